// The depot's cap (DESIGN §17): past maxBytes, content no open job needs is removed, least recently
// used first (serving content touches it). Content an open job needs stays even past the cap.
import { readdir, rm, stat, utimes } from 'node:fs/promises';
import { join } from 'node:path';

export interface Evicted {
  removed: string[];
  bytes: number;
  kept: number;
}

export async function evictPastCap(depotRoot: string, maxBytes: number, needed: Set<string>): Promise<Evicted> {
  const blobs: { digest: string; path: string; size: number; used: number }[] = [];
  const root = join(depotRoot, 'sha256');
  for (const prefix of await readdir(root).catch(() => [] as string[]))
    for (const name of await readdir(join(root, prefix)).catch(() => [] as string[])) {
      if (!/^[0-9a-f]{64}$/.test(name)) continue; // partial downloads (*.part) are work in progress
      const path = join(root, prefix, name);
      const st = await stat(path).catch(() => undefined);
      if (st) blobs.push({ digest: `sha256:${name}`, path, size: st.size, used: st.mtimeMs });
    }
  let total = blobs.reduce((n, b) => n + b.size, 0);
  const removed: string[] = [];
  let bytes = 0;
  for (const b of blobs.sort((x, y) => x.used - y.used)) {
    if (total <= maxBytes) break;
    if (needed.has(b.digest)) continue;
    await rm(b.path, { force: true });
    total -= b.size;
    bytes += b.size;
    removed.push(b.digest);
  }
  return { removed, bytes, kept: total };
}

const touched = new Map<string, number>();
/** Recent enough for least-recently-used: thousands of downloads of one file cost one write a minute. */
const TOUCH_EVERY_MS = 60_000;

/** Marks content as used now (its place in the least-recently-used order). */
export function touch(path: string) {
  const now = Date.now();
  if (now - (touched.get(path) ?? 0) < TOUCH_EVERY_MS) return;
  if (touched.size > 10_000) touched.clear();
  touched.set(path, now);
  utimes(path, new Date(now), new Date(now)).catch(() => undefined);
}
