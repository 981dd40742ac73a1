// Downloads into DATA/cache with Range resume; a file gets its final name only once verified.
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../common/log.ts';
import type { Client } from '../protocol/client.ts';
import { isDigest, sha256File } from '../protocol/digest.ts';
import { getStream } from '../protocol/get-stream.ts';
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
      let digest: string;
      if (from < pkg.size) {
        const res = await getStream(x.relay, `content/${pkg.digest}`, {
          headers: from ? { range: `bytes=${from}-` } : {},
          signal: x.signal,
        });
        const append = from > 0 && res.statusCode === 206;
        // One pass: the bytes are hashed as they are written (a resumed part is read once first).
        const hash = createHash('sha256');
        if (append)
          await pipeline(createReadStream(part), new Writable({ write: (c, _e, cb) => (hash.update(c), cb()) }));
        let size = append ? from : 0;
        await pipeline(
          res,
          new Transform({
            transform: (c: Buffer, _e, cb) => {
              // A relay that sends more than the signed size is not let fill the disk.
              if ((size += c.length) > pkg.size) {
                return cb(
                  new InstallError(
                    'DIGEST_MISMATCH',
                    `${pkg.name}@${pkg.version}: more than the signed ${pkg.size} bytes; refused`,
                  ),
                );
              }
              hash.update(c);
              cb(null, c);
            },
          }),
          createWriteStream(part, { flags: append ? 'a' : 'w' }),
        ).catch(async (e) => {
          if (e instanceof InstallError) await rm(part, { force: true });
          throw e;
        });
        digest = `sha256:${hash.digest('hex')}`;
      } else digest = await sha256File(part);
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
