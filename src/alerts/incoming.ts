// An alert as intake takes it in, whatever its format (parse.ts), and made fit to store.

export interface IncomingAlert {
  source: string;
  alertId: string;
  format: 'json' | 'text' | 'alertmanager';
  raw: string;
  at: string;
  deviceId?: string;
  failureType?: string;
  location?: string;
  jobId?: string;
  relayId?: string;
  message?: string;
  /** Set when the alert could not be parsed; the alert is stored as `unparsed`. */
  parseError?: string;
  /** Not a failure (an Alertmanager "resolved" notice): stored, never counted or ticketed. */
  notice?: string;
  /** A type a device declared that this master does not know: not taken (intake-routes.ts), named in the classify step. */
  undeclared?: string;
}

/**
 * An alert with every field in one order. Built as one literal, not by spreading a base and adding
 * fields: V8 builds such a spread field by field on a slow path (about 4 µs an alert, 10 % of
 * intake at 100 alerts a request), and the steps then read objects of one shape.
 */
export function alertOf(
  base: Pick<IncomingAlert, 'source' | 'alertId' | 'format' | 'raw' | 'at'>,
  more: Partial<Omit<IncomingAlert, 'source' | 'format' | 'raw'>> = {},
): IncomingAlert {
  return {
    source: base.source,
    alertId: more.alertId ?? base.alertId,
    format: base.format,
    raw: base.raw,
    at: more.at ?? base.at,
    deviceId: more.deviceId,
    failureType: more.failureType,
    location: more.location,
    jobId: more.jobId,
    relayId: more.relayId,
    message: more.message,
    parseError: more.parseError,
    notice: more.notice,
    undeclared: undefined,
  };
}

/** A lone UTF-16 surrogate, which no UTF-8 text can hold. */
const LONE = '[\\ud800-\\udbff](?![\\udc00-\\udfff])|(?<![\\ud800-\\udbff])[\\udc00-\\udfff]';
const hasLone = new RegExp(LONE);
const everyLone = new RegExp(LONE, 'g');
const storableText = (v: string) => v.replaceAll('\0', '\uFFFD').replace(everyLone, '\uFFFD');

/**
 * U+FFFD in every text of the alert for what a store cannot keep as it came: U+0000 (PostgreSQL's
 * text) and lone surrogates (UTF-8, on both). Done here, what a batch compares with what it read (a
 * retried alert's id, a device's name) is what the store holds, and both stores keep the same alert.
 */
export function storableAlert(a: IncomingAlert): IncomingAlert {
  const odd = (v: unknown) => typeof v === 'string' && (v.includes('\0') || hasLone.test(v));
  if (!Object.values(a).some(odd)) return a;
  return Object.fromEntries(
    Object.entries(a).map(([k, v]) => [k, typeof v === 'string' ? storableText(v) : v]),
  ) as unknown as IncomingAlert;
}
