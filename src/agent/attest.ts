// Attestation (DESIGN §17): what is on this endpoint's disk, hashed, against the tree the master signed.
import { existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describeDiff, diffTrees, hashFolder, type TreeEntry, treeHash } from '../protocol/tree.ts';
import type { PackageRef } from '../protocol/types.ts';

/** Beside the version's folder (not in it): the entries as extracted, to name what changed later. */
export const treeFile = (root: string, pkg: { name: string; version: string }) =>
  join(root, pkg.name, `.tree-${pkg.version}.json`);

/** Beside it too, written once the version's scripts succeeded: the digest they ran for. */
export const installedMarker = (root: string, pkg: { name: string; version: string }) =>
  join(root, pkg.name, `.installed-${pkg.version}`);

/** The scripts of exactly this package (by digest) ran to their end here. */
export const scriptsDone = (root: string, pkg: Pick<PackageRef, 'name' | 'version' | 'digest'>) => {
  const marker = installedMarker(root, pkg);
  return existsSync(marker) && readFileSync(marker, 'utf8').trim() === pkg.digest;
};

export interface Attestation {
  /** The tree hash of the signed paths as they are on disk now. */
  tree: string;
  /** Matches the signed tree (or the package has none to match). */
  ok: boolean;
  /** What differs, in words, when it does not match. */
  problem?: string;
  /** Files in the version's folder that were never signed (an install script's output, or worse). */
  extra: string[];
}

/**
 * Hashes the version's folder. The attested tree covers the signed paths: an install script may add
 * files of its own (they are listed as extra), but a signed file changed, re-moded or gone is not the
 * signed tree.
 */
export async function attest(root: string, pkg: Pick<PackageRef, 'name' | 'version' | 'tree'>): Promise<Attestation> {
  const dir = join(root, pkg.name, pkg.version);
  const actual = await hashFolder(dir).catch(() => undefined);
  if (!actual) return { tree: '', ok: false, problem: `${pkg.name}@${pkg.version}: ${dir} is missing`, extra: [] };
  const expected: TreeEntry[] | undefined = await readFile(treeFile(root, pkg), 'utf8')
    .then((t) => JSON.parse(t) as TreeEntry[])
    .catch(() => undefined);
  const signed = expected ? new Set(expected.map((e) => e.path)) : undefined;
  const mine = signed ? actual.filter((e) => signed.has(e.path)) : actual;
  const extra = signed ? actual.filter((e) => !signed.has(e.path)).map((e) => e.path) : [];
  const tree = treeHash(mine);
  const want = pkg.tree ?? (expected ? treeHash(expected) : undefined);
  if (!want || tree === want) return { tree, ok: true, extra };
  const diff = expected ? describeDiff(diffTrees(expected, mine)) : '';
  return {
    tree,
    ok: false,
    problem: `${pkg.name}@${pkg.version}: ${diff || 'the files are not the signed tree'}`,
    extra,
  };
}
