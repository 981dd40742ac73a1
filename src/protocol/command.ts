// Signed distribution commands (DESIGN §12): the master signs, relays verify what they are sent,
// and agents verify what they are asked to install, so no one between them can change what runs.
import { expired } from './assignment.ts';
import { ListTree, signCanonical, verifyCanonical } from './signing.ts';
import { CommandHeader, type DistributionCommand, type SignedHeader } from './types.ts';

export const DEFAULT_EXPIRY_MS = 30 * 86_400_000;
/** A redistribution of a command this close to its expiry asks the master to sign it again with new times. */
export const RENEW_BEFORE_MS = 60_000;

/** Expired, or within RENEW_BEFORE_MS of it: a redistribution needs the master's fresh times. */
export const renewDue = (h: { expiresAt?: string }, now = Date.now()) =>
  expired({ expiresAt: h.expiresAt ?? '' }, now + RENEW_BEFORE_MS);

export const headerOf = (c: DistributionCommand): CommandHeader => ({
  commandId: c.commandId,
  jobId: c.jobId,
  relayId: c.relayId,
  kind: c.kind,
  packages: c.packages,
  params: c.params,
  issuedAt: c.issuedAt,
  expiresAt: c.expiresAt ?? '',
  issuedBy: c.issuedBy,
  listRoot: c.listRoot ?? '',
  listSize: c.listSize ?? 0,
});

/** Adds the list's root, the expiry and the master's signature to a command. */
export function signCommand(privatePem: string, c: DistributionCommand, expiresAt: string): DistributionCommand {
  const tree = new ListTree(c.distributionList);
  const signed = { ...c, expiresAt, listRoot: tree.root, listSize: tree.size };
  return { ...signed, signature: signCanonical(privatePem, headerOf(signed)) };
}

/** Why a relay must refuse a command from its master, or undefined when it verifies whole. */
export function commandProblem(keys: readonly string[], c: DistributionCommand, relayId: string, now = Date.now()) {
  if (!c.signature) return `command ${c.commandId} is not signed`;
  const header = CommandHeader.safeParse(headerOf(c));
  if (!header.success) return `command ${c.commandId} has a malformed header`;
  if (!verifyCanonical(keys, header.data, c.signature))
    return `command ${c.commandId}: the signature does not verify with the master's key`;
  const tree = ListTree.of(c.distributionList);
  if (tree.root !== c.listRoot || tree.size !== c.listSize || tree.size !== c.distributionList.length)
    return `command ${c.commandId}: the distribution list is not the one the master signed`;
  if (c.relayId !== relayId) return `command ${c.commandId} is for relay ${c.relayId}, not ${relayId}`;
  if (expired(header.data, now)) return `command ${c.commandId} expired at ${c.expiresAt}`;
  return undefined;
}

/** The master's signed header a command rests on: its own, or for a redistribution the original's. */
export function authorityOf(c: DistributionCommand): SignedHeader | undefined {
  if (c.kind === 'redistribute') return c.original;
  return c.signature ? { header: headerOf(c), signature: c.signature } : undefined;
}

export { type AssignmentCheck, checkAssignment } from './assignment.ts';
