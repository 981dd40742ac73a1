// What an agent checks of an assignment before it downloads anything (DESIGN §12). Kept apart from
// command.ts and its schemas: an endpoint runs this all day, and zod alone would add 13 MB to it.
import { isDigest } from './digest.ts';
import { canonicalJson, inList, verifyCanonical } from './signing.ts';
import type { Assignment, CommandHeader, JobParams, PackageRef } from './types.ts';

export const expired = (h: { expiresAt: string }, now: number) => !(Date.parse(h.expiresAt) > now);

const isString = (v: unknown): v is string => typeof v === 'string';
const isObject = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v);
const flat = (v: unknown) => ['string', 'number', 'boolean'].includes(typeof v);

/**
 * The shape of a signed command header, before its signature is checked: only what verifying and
 * reading it needs, and flat enough that a hostile header cannot make the canonical form recurse deep.
 * The signature then proves the rest (the master signs only headers its schema built).
 */
function wellFormed(h: unknown): h is CommandHeader {
  if (!isObject(h)) return false;
  const fields = ['commandId', 'jobId', 'relayId', 'kind', 'issuedAt', 'expiresAt', 'issuedBy', 'listRoot'];
  if (!fields.every((f) => isString(h[f])) || typeof h.listSize !== 'number') return false;
  if (!/^[0-9a-f]{64}$/.test(h.listRoot as string)) return false;
  if (!isObject(h.params) || !Object.values(h.params).every(flat)) return false;
  return (
    Array.isArray(h.packages) &&
    h.packages.every((p) => isObject(p) && isDigest(p.digest) && Object.values(p).every(flat))
  );
}

export type AssignmentCheck =
  | { ok: true; packages: PackageRef[]; params: JobParams }
  | { ok: false; failureType: 'SIGNATURE_INVALID' | 'EXPIRED'; reason: string };

/**
 * What an agent checks before it downloads anything: the header is the master's, it has not
 * expired, this device is on its list, and the packages and parameters are exactly the signed ones.
 */
export function checkAssignment(
  a: Assignment,
  deviceId: string,
  keys: readonly string[],
  now = Date.now(),
  /** Headers already verified (signature and canonical header): `fanout swarm` checks each command
   * once for its thousands of simulated endpoints; a real agent passes nothing. */
  verified?: Set<string>,
): AssignmentCheck {
  const bad = (reason: string): AssignmentCheck => ({ ok: false, failureType: 'SIGNATURE_INVALID', reason });
  const header = a.authority?.header;
  if (!wellFormed(header) || typeof a.authority.signature !== 'string')
    return bad('the assignment carries no well-formed signed command header');
  const seen = verified && `${a.authority.signature}\n${canonicalJson(header)}`;
  if (!(seen && verified.has(seen))) {
    if (!verifyCanonical(keys, header, a.authority.signature))
      return bad("the command header is not signed by the master's key");
    if (seen) verified.add(seen);
  }
  if (header.jobId !== a.jobId) return bad(`the signed command is for job ${header.jobId}, not ${a.jobId}`);
  if (header.kind !== 'distribute') return bad(`a signed ${header.kind} command cannot be installed`);
  if (!inList(header.listRoot, deviceId, a.proof ?? []))
    return bad(`${deviceId} is not on the distribution list the master signed`);
  if (
    canonicalJson(a.packages) !== canonicalJson(header.packages) ||
    canonicalJson(a.params) !== canonicalJson(header.params)
  )
    return bad('the packages or parameters differ from what the master signed');
  if (expired(header, now))
    return { ok: false, failureType: 'EXPIRED', reason: `the command expired at ${header.expiresAt}` };
  return { ok: true, packages: header.packages, params: header.params };
}
