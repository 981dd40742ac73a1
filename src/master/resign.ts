// Signatures made by a key this master has since rotated from, made again by the key in force. A
// relay or endpoint pins the key it is offered at its first enrollment and trusts that key and its
// successors only, so what an earlier key signed (a package at its push, a command still waiting
// for a relay replaced since) would be refused by every device enrolled after the rotation. Only
// what one of this master's own keys signed is signed again: a row changed in the database verifies
// with none of them, goes out as it is, and every device refuses it.
import { DEFAULT_EXPIRY_MS, headerOf, renewDue } from '../protocol/command.ts';
import { signPackage, verifyPackage } from '../protocol/crypto.ts';
import { signCanonical, verifyCanonical } from '../protocol/signing.ts';
import type { DistributionCommand, PackageRef, SignedHeader } from '../protocol/types.ts';

/** The key in force, and every key it replaced (oldest first, the one in force last). */
export interface SigningKeys {
  readonly privatePem: string;
  readonly ownKeys: readonly string[];
}

/** Whether the signature checked by `verifies` is by an earlier key of this master's, not the one in force. */
const byEarlierKey = (own: readonly string[], verifies: (keys: readonly string[]) => boolean) =>
  own.length > 1 && !verifies(own.slice(-1)) && verifies(own.slice(0, -1));

export function packageSignedNow(key: SigningKeys, p: PackageRef): PackageRef {
  const { signature, ...fields } = p;
  if (!byEarlierKey(key.ownKeys, (keys) => verifyPackage(keys, fields, signature))) return p;
  return { ...p, signature: signPackage(key.privatePem, fields) };
}

/**
 * A command as the key in force signs it: the same header (id, times, the list's root) with its
 * packages signed now too. Only the header is signed again, never a root computed from the list
 * stored beside it: a list changed in the database still fails the relay's check against the root.
 */
export function commandSignedNow(key: SigningKeys, c: DistributionCommand): DistributionCommand {
  const { signature } = c;
  if (!signature || !byEarlierKey(key.ownKeys, (keys) => verifyCanonical(keys, headerOf(c), signature))) return c;
  const now = { ...c, packages: c.packages.map((p) => packageSignedNow(key, p)) };
  return { ...now, signature: signCanonical(key.privatePem, headerOf(now)) };
}

/**
 * A command's header signed again by the key in force, for a redistribution of it, with its
 * packages signed by that key too (an endpoint wiped and enrolled since trusts no earlier one).
 * An expired command (DESIGN §12) gets new times; one asked for only because an earlier key signed
 * it keeps its own, so that a rotation never lengthens what a command may do (a job's deadline
 * stays its end). Nothing else changes. Only a header one of this master's keys signed: undefined
 * for a row changed in the database, which the master must not vouch for.
 */
export function renewedAuthority(key: SigningKeys, c: DistributionCommand, now = new Date()): SignedHeader | undefined {
  if (!c.signature || !verifyCanonical(key.ownKeys, headerOf(c), c.signature)) return undefined;
  const header = {
    ...headerOf(c),
    packages: c.packages.map((p) => packageSignedNow(key, p)),
    ...(renewDue(c, now.getTime()) && {
      issuedAt: now.toISOString(),
      expiresAt: new Date(now.getTime() + DEFAULT_EXPIRY_MS).toISOString(),
    }),
  };
  return { header, signature: signCanonical(key.privatePem, header) };
}
