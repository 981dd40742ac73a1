// The master's signing key as relays and agents know it: pinned at first enrollment, and changed
// only by a rotation statement signed by the key they already trust (`fanout key rotate`).
import { createHash, createPublicKey } from 'node:crypto';
import { signCanonical, verifyCanonical } from './signing.ts';

/** `SHA256:` and the base64 SHA-256 of the key's DER form, like an SSH fingerprint. */
export function fingerprint(publicPem: string): string {
  const der = createPublicKey(publicPem).export({ type: 'spki', format: 'der' });
  return `SHA256:${createHash('sha256').update(der).digest('base64').replace(/=+$/, '')}`;
}

export interface Rotation {
  statement: { type: 'fanout-key-rotation'; previous: string; next: string; at: string };
  signature: string;
}

/** The old key's signature over the new key. */
export function rotationStatement(oldPrivatePem: string, oldPublicPem: string, newPublicPem: string): Rotation {
  const statement = {
    type: 'fanout-key-rotation' as const,
    previous: fingerprint(oldPublicPem),
    next: newPublicPem,
    at: new Date().toISOString(),
  };
  return { statement, signature: signCanonical(oldPrivatePem, statement) };
}

export class KeyChangedError extends Error {
  override name = 'KeyChangedError';
}

/**
 * The keys a device may trust, starting from the one it pinned and following each rotation signed
 * by the key before. The master's current key must be among them.
 */
export function trustedKeys(pinnedPem: string, currentPem: string, rotations: readonly Rotation[]): string[] {
  const keys = [pinnedPem];
  let last = pinnedPem;
  for (const r of rotations) {
    // Rotations come from the network: anything not shaped like one is skipped, never trusted.
    if (typeof r?.statement?.next !== 'string' || typeof r.signature !== 'string') continue;
    if (r.statement.previous !== fingerprint(last)) continue;
    if (!verifyCanonical([last], r.statement, r.signature)) continue;
    last = r.statement.next;
    keys.push(last);
  }
  if (!keys.some((k) => fingerprint(k) === fingerprint(currentPem)))
    throw new KeyChangedError(
      `the master's key changed from ${fingerprint(pinnedPem)} to ${fingerprint(currentPem)} without a rotation statement signed by the pinned key; refusing it`,
    );
  return keys;
}
