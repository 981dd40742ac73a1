// Content digests: "sha256:" and 64 lower-case hex digits, nothing else, before any path is made of one.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

export const DIGEST = /^sha256:[0-9a-f]{64}$/;
export const isDigest = (d: unknown): d is string => typeof d === 'string' && DIGEST.test(d);

/** `<root>/sha256/<first two hex>/<hex>` for a valid digest; undefined for anything else. */
export function digestPath(root: string, digest: string): string | undefined {
  if (!isDigest(digest)) return undefined;
  const hex = digest.slice(7);
  return join(root, 'sha256', hex.slice(0, 2), hex);
}

export async function sha256File(file: string) {
  const h = createHash('sha256');
  await pipeline(
    createReadStream(file, { highWaterMark: 1 << 20 }),
    new Writable({ write: (c, _e, cb) => (h.update(c), cb()) }),
  );
  return `sha256:${h.digest('hex')}`;
}
