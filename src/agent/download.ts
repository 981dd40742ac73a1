// Downloads into DATA/cache with Range resume; a file gets its final name only once verified.
import { createWriteStream, existsSync } from 'node:fs';
import { rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../common/log.ts';
import type { Client } from '../protocol/client.ts';
import { isDigest, sha256File } from '../protocol/digest.ts';
import type { PackageRef } from '../protocol/types.ts';
import { InstallError, verifyDownloaded } from './state.ts';

const TRIES = 6;

export async function download(x: {
  pkg: PackageRef;
  relay: Client;
  cacheDir: string;
  keys: readonly string[];
  log: Logger;
  signal: AbortSignal;
}): Promise<string> {
  const { pkg } = x;
  // A digest becomes a file name only once it is nothing but "sha256:" and hex.
  if (!isDigest(pkg.digest))
    throw new InstallError('DIGEST_MISMATCH', `"${pkg.digest}" is not a sha256 digest; refused`);
  const cached = join(x.cacheDir, pkg.digest.slice(7));
  if (existsSync(cached)) {
    // Cached content is verified again: a disk or a hand may have changed it since.
    if ((await sha256File(cached)) === pkg.digest) return cached;
    x.log.warn({ digest: pkg.digest }, 'cached content no longer matches its digest; downloading it again');
    await rm(cached, { force: true });
  }
  const part = `${cached}.part`;
  for (let attempt = 0; ; attempt++) {
    const from = existsSync(part) ? (await stat(part)).size : 0;
    try {
      if (from < pkg.size) {
        const res = await x.relay.raw('GET', `content/${pkg.digest}`, {
          headers: from ? { range: `bytes=${from}-` } : {},
          timeoutMs: 600_000,
          signal: x.signal,
        });
        const append = from > 0 && res.status === 206;
        await pipeline(
          Readable.fromWeb(res.body as import('node:stream/web').ReadableStream),
          createWriteStream(part, { flags: append ? 'a' : 'w' }),
        );
      }
      const digest = await sha256File(part);
      try {
        verifyDownloaded(pkg, digest, x.keys);
      } catch (e) {
        await rm(part, { force: true });
        throw e;
      }
      await rename(part, cached);
      return cached;
    } catch (e) {
      if (e instanceof InstallError) throw e;
      if (attempt >= TRIES - 1 || x.signal.aborted)
        throw new InstallError('UNREACHABLE', `download of ${pkg.name}@${pkg.version} failed: ${(e as Error).message}`);
      x.log.warn({ err: (e as Error).message, attempt }, 'download interrupted; resuming');
      await sleep(300 * 2 ** attempt);
    }
  }
}
