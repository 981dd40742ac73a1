// The master's requests to a relay's admin API are signed with the master's own key, which the relay
// pinned: the master keeps no relay secret, and a request is bound to one relay, method, path and body.
import { createHash } from 'node:crypto';
import { canonicalJson, signCanonical, verifyCanonical } from './signing.ts';

export const MASTER_SCHEME = 'FanoutMaster';
const SKEW_MS = 5 * 60_000;

const bodyHash = (body: unknown) =>
  createHash('sha256')
    .update(body === undefined ? '' : canonicalJson(body))
    .digest('hex');

const statement = (relayId: string, method: string, path: string, time: string, body: string) => ({
  type: 'fanout-master-request',
  relayId,
  method: method.toUpperCase(),
  path,
  time,
  body,
});

export function masterRequestHeaders(privatePem: string, relayId: string, method: string, path: string, body: unknown) {
  const time = new Date().toISOString();
  const hash = bodyHash(body);
  return {
    authorization: `${MASTER_SCHEME} ${signCanonical(privatePem, statement(relayId, method, path, time, hash))}`,
    'x-fanout-time': time,
    'x-fanout-body-sha256': hash,
  };
}

/** Checks the signed headers (before the body is read); the body's hash is checked once it is parsed. */
export function masterRequestProblem(
  keys: readonly string[],
  relayId: string,
  req: { method: string; url: string; headers: Record<string, string | string[] | undefined> },
  now = Date.now(),
): string | undefined {
  const auth = String(req.headers.authorization ?? '');
  const time = String(req.headers['x-fanout-time'] ?? '');
  const hash = String(req.headers['x-fanout-body-sha256'] ?? '');
  if (!auth.startsWith(`${MASTER_SCHEME} `)) return 'not a master request';
  if (!(Math.abs(Date.parse(time) - now) <= SKEW_MS))
    return 'the request is too old or too far ahead (clocks within 5 minutes)';
  const path = req.url;
  if (!verifyCanonical(keys, statement(relayId, req.method, path, time, hash), auth.slice(MASTER_SCHEME.length + 1)))
    return "the request is not signed by the master's key";
  return undefined;
}

export const masterBodyMatches = (headers: Record<string, unknown>, body: unknown) =>
  headers['x-fanout-body-sha256'] === bodyHash(body);
