// Signed trees (DESIGN §17): a package's files as `mode sha256 path` entries, sorted by path, and the
// tree hash, a Merkle root over them. The master records them at push; an agent hashes what is on its
// disk and compares: the endpoint's disk, not a report, is the truth.
import { createHash } from 'node:crypto';
import type { Stats } from 'node:fs';
import { lstat, open, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { listRoot } from './signing.ts';

export interface TreeEntry {
  path: string;
  /** Permission bits only (e.g. 0o644). */
  mode: number;
  sha256: string;
}

export const entryLine = (e: TreeEntry) => `${(e.mode & 0o777).toString(8).padStart(3, '0')} ${e.sha256} ${e.path}`;

const byPath = (a: TreeEntry, b: TreeEntry) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0);

/** The tree hash of a set of entries (an empty tree has a root too). */
export function treeHash(entries: readonly TreeEntry[]): string {
  const lines = [...entries].sort(byPath).map(entryLine);
  return lines.length ? listRoot(lines) : createHash('sha256').update('').digest('hex');
}

/**
 * Hashes every file under `dir` (relative paths with `/`); anything that is not a file or folder is an
 * entry too. With `hashOf` answering '', it lists the folder's shape (paths and modes) without reading.
 */
export async function hashFolder(
  dir: string,
  /** `file` is the full path, `path` the entry's (relative, with `/`). */
  hashOf: (file: string, st: Stats, path: string) => Promise<string> = hashFile,
): Promise<TreeEntry[]> {
  const out: TreeEntry[] = [];
  const walk = async (rel: string): Promise<void> => {
    const names = await readdir(join(dir, rel));
    // A few at a time: small files cost a system call or two each, so waiting on one at a time dominates.
    for (let i = 0; i < names.length; i += 16)
      await Promise.all(
        names.slice(i, i + 16).map(async (name) => {
          const path = rel ? `${rel}/${name}` : name;
          const st = await lstat(join(dir, path));
          if (st.isDirectory()) return walk(path);
          const mode = st.mode & 0o777;
          if (st.isFile()) out.push({ path, mode, sha256: await hashOf(join(dir, path), st, path) });
          // A link or device in an installed tree was never signed: it shows as a changed entry.
          else out.push({ path, mode, sha256: `not a file (${st.isSymbolicLink() ? 'link' : 'special'})` });
        }),
      );
  };
  await walk('');
  return out.sort(byPath);
}

/** Read buffers kept for the next large file: fresh memory for each read cost more than hashing it. */
const spare: Buffer[] = [];

/** A file's SHA-256, hex. */
export async function hashFile(file: string, { size }: { size: number }) {
  const h = createHash('sha256');
  if (size <= 1 << 20) return h.update(await readFile(file)).digest('hex');
  const buf = spare.pop() ?? Buffer.allocUnsafe(1 << 20);
  const f = await open(file, 'r');
  try {
    for (let n: number; (n = (await f.read(buf, 0, buf.length, null)).bytesRead); ) h.update(buf.subarray(0, n));
  } finally {
    await f.close();
    if (spare.length < 4) spare.push(buf);
  }
  return h.digest('hex');
}

export interface TreeDiff {
  changed: string[];
  missing: string[];
  extra: string[];
}

export function diffTrees(expected: readonly TreeEntry[], actual: readonly TreeEntry[]): TreeDiff {
  const want = new Map(expected.map((e) => [e.path, entryLine(e)]));
  const have = new Map(actual.map((e) => [e.path, entryLine(e)]));
  return {
    changed: [...want].filter(([p, l]) => have.has(p) && have.get(p) !== l).map(([p]) => p),
    missing: [...want.keys()].filter((p) => !have.has(p)),
    extra: [...have.keys()].filter((p) => !want.has(p)),
  };
}

export function describeDiff(d: TreeDiff, max = 5): string {
  const part = (what: string, xs: string[]) =>
    xs.length ? `${what} ${xs.slice(0, max).join(', ')}${xs.length > max ? ` and ${xs.length - max} more` : ''}` : '';
  return [part('changed', d.changed), part('missing', d.missing), part('extra', d.extra)].filter(Boolean).join('; ');
}
