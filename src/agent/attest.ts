// Attestation (DESIGN §17): what is on this endpoint's disk, hashed, against the tree the master signed.
import { existsSync, readFileSync, type Stats } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describeDiff, diffTrees, hashFile, hashFolder, type TreeEntry, treeHash } from '../protocol/tree.ts';
import type { PackageRef } from '../protocol/types.ts';

/** Beside the version's folder (not in it): the entries as extracted, to name what changed later. */
export const treeFile = (root: string, pkg: { name: string; version: string }) =>
  join(root, pkg.name, `.tree-${pkg.version}.json`);

/** Beside it too, written once the version's scripts succeeded: the digest they ran for. */
export const installedMarker = (root: string, pkg: { name: string; version: string }) =>
  join(root, pkg.name, `.installed-${pkg.version}`);

/** There while a version's scripts run: left behind, it says the agent stopped in the middle of them. */
export const runningMarker = (root: string, pkg: { name: string; version: string }) =>
  join(root, pkg.name, `.installing-${pkg.version}`);

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
 * What an install hashed as it wrote the files (download.ts), with each file's status once written,
 * and the change time of a file written after them, just before the scripts ran.
 */
export interface Hashed {
  files: Map<string, { sha256: string; st: Stats }>;
  since: number;
}

/**
 * Unchanged since it was hashed: the same inode, size, mode and times (a write sets the change time,
 * and no call sets it back). A change in the clock tick the file was written in could leave its times
 * as they were, so only files written before `since` count.
 */
const unchanged = (was: Stats, now: Stats, since: number) =>
  was.ctimeMs < since &&
  was.ino === now.ino &&
  was.dev === now.dev &&
  was.size === now.size &&
  was.mode === now.mode &&
  was.mtimeMs === now.mtimeMs &&
  was.ctimeMs === now.ctimeMs;

/**
 * Hashes the version's folder. The attested tree covers the signed paths: an install script may add
 * files of its own (they are listed as extra), but a signed file changed, re-moded or gone is not the
 * signed tree. Right after an install, a file its scripts did not touch is not read again (`hashed`):
 * read back at once it would come from the page cache, the very bytes just hashed.
 */
export async function attest(
  root: string,
  pkg: Pick<PackageRef, 'name' | 'version' | 'tree'>,
  hashed?: Hashed,
): Promise<Attestation> {
  const dir = join(root, pkg.name, pkg.version);
  const hashOf = async (file: string, st: Stats, path: string) => {
    const was = hashed?.files.get(path);
    return was && unchanged(was.st, st, hashed!.since) ? was.sha256 : hashFile(file, st);
  };
  const actual = await hashFolder(dir, hashOf).catch(() => undefined);
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
