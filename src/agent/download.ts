// Download, verify and extract in one pass: the bytes from the relay are hashed and unpacked into a
// staging folder as they arrive, so a package is written once and never kept as an archive. Nothing
// in the staging folder is used before the whole download matched the signed digest and signature.
import { createHash } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { PassThrough } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../common/log.ts';
import { type ArchiveLimits, ArchiveRefused, type Inspected, inspectArchive } from '../protocol/archive.ts';
import type { Client } from '../protocol/client.ts';
import { isDigest } from '../protocol/digest.ts';
import { getStream } from '../protocol/get-stream.ts';
import type { PackageRef } from '../protocol/types.ts';
import { InstallError, verifyDownloaded } from './state.ts';

const TRIES = 6;
const UNPACK_CHUNK = 1 << 20;

/** A package unpacked into its staging folder, its download verified. */
export interface Staged {
  dir: string;
  extracted: Inspected;
}

export async function download(x: {
  pkg: PackageRef;
  relay: Client;
  /** A new folder for the package's files; removed unless the package arrives whole and verified. */
  into: string;
  keys: readonly string[];
  limits: ArchiveLimits;
  log: Logger;
  signal: AbortSignal;
}): Promise<Staged> {
  const { pkg } = x;
  // A digest is used in a path only once it is nothing but "sha256:" and hex.
  if (!isDigest(pkg.digest))
    throw new InstallError('DIGEST_MISMATCH', `"${pkg.digest}" is not a sha256 digest; refused`);
  await rm(x.into, { recursive: true, force: true });
  const feed = new PassThrough({ highWaterMark: 1 << 20 });
  let refused: Error | undefined;
  const extraction = inspectArchive(feed, x.limits, x.into).catch((e: Error) => {
    refused = e;
    return undefined;
  });
  const hash = createHash('sha256');
  let received = 0;
  // Socket reads are small (often 16–64 KiB) when many downloads share a machine: unpacked in runs of
  // 1 MiB, each costs one pass through gunzip, tar and a file write instead of dozens.
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  const unpack = async () => {
    if (!pendingBytes) return;
    const run = pending.length === 1 ? pending[0] : Buffer.concat(pending, pendingBytes);
    pending = [];
    pendingBytes = 0;
    // After a refusal the rest is still hashed (to tell a bad download from a bad package), not unpacked.
    if (!refused && !feed.write(run)) await Promise.race([new Promise((r) => feed.once('drain', r)), extraction]);
  };
  try {
    for (let attempt = 0; received < pkg.size; attempt++) {
      try {
        const res = await getStream(x.relay, `content/${pkg.digest}`, {
          headers: received ? { range: `bytes=${received}-` } : {},
          signal: x.signal,
        });
        // A relay that ignores the range sends it all again: what is already here is skipped.
        let skip = received && res.statusCode !== 206 ? received : 0;
        for await (let chunk of res as AsyncIterable<Buffer>) {
          if (skip) {
            const n = Math.min(skip, chunk.length);
            skip -= n;
            chunk = chunk.subarray(n);
            if (!chunk.length) continue;
          }
          // A relay that sends more than the signed size is not let fill the disk.
          if (received + chunk.length > pkg.size)
            throw new InstallError(
              'DIGEST_MISMATCH',
              `${pkg.name}@${pkg.version}: more than the signed ${pkg.size} bytes; refused`,
            );
          received += chunk.length;
          hash.update(chunk);
          pending.push(chunk);
          pendingBytes += chunk.length;
          if (pendingBytes >= UNPACK_CHUNK || received === pkg.size) await unpack();
        }
        await unpack();
        if (received < pkg.size) throw new Error(`the relay ended the download at ${received} of ${pkg.size} bytes`);
      } catch (e) {
        if (e instanceof InstallError) throw e;
        if (attempt >= TRIES - 1 || x.signal.aborted)
          throw new InstallError(
            'UNREACHABLE',
            `download of ${pkg.name}@${pkg.version} failed: ${(e as Error).message}`,
          );
        x.log.warn({ err: (e as Error).message, attempt, received }, 'download interrupted; resuming');
        await sleep(300 * 2 ** attempt);
      }
    }
    feed.end();
    const extracted = await extraction;
    verifyDownloaded(pkg, `sha256:${hash.digest('hex')}`, x.keys);
    if (!extracted) {
      if (refused instanceof ArchiveRefused)
        throw new InstallError('UNSAFE_ARCHIVE', `${pkg.name}@${pkg.version}: ${refused.message}`);
      throw new InstallError('EXTRACT_FAILED', `${pkg.name}@${pkg.version}: cannot extract: ${refused?.message}`);
    }
    return { dir: x.into, extracted };
  } catch (e) {
    feed.destroy();
    await extraction;
    await rm(x.into, { recursive: true, force: true });
    throw e;
  }
}
