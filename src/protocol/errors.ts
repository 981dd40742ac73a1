// Every error a client can see: one table of code, HTTP status, message and when it happens.
// docs/errors.md is pinned to this table by test/errors.test.ts. Messages are templates: `{name}`
// is filled from the values given where the error is thrown, so the wording lives only here.
const entry = <M extends string>(status: number, message: M, when: string) => ({ status, message, when });

export const errorTable = {
  FANOUT_ERR_AUTH_MISSING: entry(
    401,
    'missing token: send "Authorization: Bearer <token>"',
    'A request carries no token.',
  ),
  FANOUT_ERR_AUTH_INVALID: entry(
    401,
    'token not recognized by {server}: {hint}',
    'The token is unknown here: mistyped, re-issued (`fanout device token ID` ends the old one) or for another server.',
  ),
  FANOUT_ERR_AUTH_FORBIDDEN: entry(403, 'this needs {needs}', 'The token is valid but its holder may not do this.'),
  FANOUT_ERR_INPUT_INVALID: entry(
    400,
    '{detail}',
    'A body, query or path parameter does not validate; the message names each field and what is wrong.',
  ),
  FANOUT_ERR_INPUT_TOO_LARGE: entry(
    413,
    'the request body is larger than this route takes ({detail})',
    'A body over the route limit.',
  ),
  FANOUT_ERR_INPUT_MEDIA_TYPE: entry(
    415,
    'this route does not take {mediaType}; send {expected}',
    'The Content-Type is not one the route reads.',
  ),
  FANOUT_ERR_INVENTORY_INVALID: entry(
    400,
    'inventory is invalid:\n  {errors}',
    'An inventory file that does not validate; every error is listed and nothing is applied.',
  ),
  FANOUT_ERR_DEVICE_UNKNOWN: entry(404, 'not in the inventory: {ids}', 'A device id that no inventory import defined.'),
  FANOUT_ERR_LOCATION_UNKNOWN: entry(
    404,
    'location "{code}" is not in the inventory',
    'A location code that no import defined.',
  ),
  FANOUT_ERR_PACKAGE_INVALID: entry(
    400,
    '{where}: {problem}',
    'A package folder or archive that is not a valid package (fanout.json, archive rules).',
  ),
  FANOUT_ERR_PACKAGE_EXISTS: entry(
    409,
    '{name}@{version} already exists with other content ({digest}); bump the version',
    'A push of a name and version already stored with different bytes.',
  ),
  FANOUT_ERR_PACKAGE_UNKNOWN: entry(
    404,
    'package {name}@{version} was never pushed: run `fanout package push FILE` first',
    'A job names a package the master does not hold.',
  ),
  FANOUT_ERR_JOB_UNKNOWN: entry(
    404,
    'job "{jobId}" does not exist{where}',
    'A job id the master (or the relay) does not know.',
  ),
  FANOUT_ERR_TARGET_CANCELLED: entry(
    409,
    'job {jobId} was cancelled for {deviceId} before it installed: {why}',
    'An endpoint reports a step toward an install of a job cancelled since; it stops and installs nothing.',
  ),
  FANOUT_ERR_JOB_NO_TARGETS: entry(400, '{why}', 'A job with no target, or labels that match no endpoint.'),
  FANOUT_ERR_BLOB_UNKNOWN: entry(
    404,
    'no such content: {digest}',
    'Content asked for by a digest that is not stored here.',
  ),
  FANOUT_ERR_RANGE_UNSATISFIABLE: entry(
    416,
    'range "{range}" is not satisfiable for {size} bytes',
    'A Range header outside the content.',
  ),
  FANOUT_ERR_ALERT_INVALID: entry(400, '{detail}', 'An alert request the alert center cannot take as a whole.'),
  FANOUT_ERR_ALERT_UNKNOWN: entry(404, 'alert {id} does not exist', 'An alert id that is not stored.'),
  FANOUT_ERR_TICKET_UNKNOWN: entry(404, 'ticket "{id}" does not exist', 'A ticket id that is not stored.'),
  FANOUT_ERR_TICKET_STATE: entry(
    409,
    'ticket {id}: {why}',
    'A change a ticket in its state cannot take (acknowledging a resolved ticket).',
  ),
  FANOUT_ERR_TICKET_LINK: entry(
    401,
    'this resolve link is not valid for ticket {id}',
    "The key in a ticket mail's resolve link does not match the ticket.",
  ),
  FANOUT_ERR_OUTAGE_UNKNOWN: entry(404, 'outage "{id}" does not exist', 'An outage id that is not stored.'),
  FANOUT_ERR_PLAN_UNKNOWN: entry(
    404,
    'plan "{planId}" is not known to {where}',
    'A redistribution plan id that neither the master nor the relay recorded.',
  ),
  FANOUT_ERR_PLAN_STATE: entry(
    409,
    'plan {planId}: {why}',
    'A plan that cannot be approved, rejected or built now; the message says why and what to do.',
  ),
  FANOUT_ERR_FAULTS_DISABLED: entry(
    403,
    'fault injection is off: start the daemon with --allow-faults',
    'Fault injection asked of a daemon started without --allow-faults.',
  ),
  FANOUT_ERR_RELAY_UNREACHABLE: entry(
    502,
    'relay {relayId}: {why}',
    'The master or a child relay could not get an answer from a relay.',
  ),
  FANOUT_ERR_KEY_CHANGED: entry(
    409,
    '{detail}',
    'A relay or agent was offered a master key other than the one it pinned, without a rotation statement signed by the pinned key (`fanout key rotate` makes one). Check which master it talks to; to start over, remove DATA/master.pub on that device.',
  ),
  FANOUT_ERR_KEY_NOT_LATEST: entry(
    409,
    "this master signs with {fingerprint}, but another master has rotated the key since, to {latest}: copy that master's signing key and its .rotations.json here (taken up at once, no restart), or rotate there",
    'A `fanout key rotate` on a master whose copy of the signing key is not the latest (masters on separate hosts, each with a copy). Nothing changed; the rotation the other master made is served by every master already.',
  ),
  FANOUT_ERR_COMMAND_REFUSED: entry(
    403,
    'command {commandId}: {why}',
    'A command or plan that would change what the master signed (other packages or parameters, a device not on the signed list, an expired command).',
  ),
  FANOUT_ERR_NOT_FOUND: entry(404, 'no route {method} {url}', 'A path that no route serves.'),
  FANOUT_ERR_INTERNAL: entry(
    500,
    'internal error: {detail}; the daemon log has the details',
    'A bug or an unexpected failure; please report it with the log.',
  ),
} as const;

export type ErrorCode = keyof typeof errorTable;

type Holes<S extends string> = S extends `${string}{${infer K}}${infer R}` ? K | Holes<R> : never;
export type ErrorParams<C extends ErrorCode> = { [K in Holes<(typeof errorTable)[C]['message']>]: string | number };

export const errorStatus = (code: ErrorCode) => errorTable[code].status;

export function formatError(code: ErrorCode, params: Record<string, unknown>): string {
  return errorTable[code].message.replace(/\{(\w+)\}/g, (_m, k: string) => String(params[k] ?? ''));
}

export class FanoutError<C extends ErrorCode = ErrorCode> extends Error {
  override name = 'FanoutError';
  readonly code: C;
  readonly details?: unknown;
  constructor(code: C, params: ErrorParams<C>, details?: unknown) {
    super(formatError(code, params));
    this.code = code;
    this.details = details;
  }
  get statusCode(): number {
    return errorStatus(this.code);
  }
  toJSON() {
    return {
      error: {
        code: this.code,
        message: this.message,
        ...(this.details === undefined ? {} : { details: this.details }),
      },
    };
  }
}

/** The body every daemon answers an error with. */
export const errorBody = (code: ErrorCode, message: string, details?: unknown) => ({
  error: { code, message, ...(details === undefined ? {} : { details }) },
});
