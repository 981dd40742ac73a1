// Download, verify and extract in one pass: the bytes from the relay are hashed and unpacked into a
// staging folder as they arrive, so a package is written once and never kept as an archive. Nothing
// in the staging folder is used before the whole download matched the signed digest and signature.
import { createHash } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../common/log.ts';
import { type ArchiveLimits, ArchiveRefused, archiveInput, type Inspected } from '../protocol/archive.ts';
import type { Client } from '../protocol/client.ts';
import { isDigest } from '../protocol/digest.ts';
import { receiveContent } from '../protocol/receive-content.ts';
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
  const { input, result } = archiveInput(x.limits, x.into);
  let refused: Error | undefined;
  const extraction = result.catch((e: Error) => {
    refused = e;
    return undefined;
  });
  const hash = createHash('sha256');
  let received = 0;
  // Unpacked in runs of 1 MiB: each run is one pass through gunzip, tar and a file write. The socket
  // reads straight into the run (readInto below), and a run's buffer is reused once gunzip has read
  // it: with 64 downloads on two cores, fresh memory for each read cost more than hashing it.
  const pool = Array.from({ length: 4 }, () => Buffer.allocUnsafe(UNPACK_CHUNK));
  let run = pool.pop();
  let used = 0;
  const waiting = new Set<() => void>();
  /** Sends the run gathered so far to be unpacked; a promise when every buffer is being unpacked. */
  const flush = (): Promise<void> | undefined => {
    if (!used || !run) return;
    const full = run;
    // After a refusal the rest is still hashed (to tell a bad download from a bad package), not unpacked.
    if (refused) pool.push(full);
    else
      input.write(full.subarray(0, used), () => {
        pool.push(full);
        for (const w of waiting) w();
      });
    used = 0;
    run = pool.pop();
    if (run) return;
    // The socket waits (paused) for a buffer back rather than read into fresh memory.
    return Promise.race([new Promise<void>((r) => waiting.add(r)), extraction.then(() => undefined)]).then(() => {
      waiting.clear();
      run ??= pool.pop() ?? Buffer.allocUnsafe(UNPACK_CHUNK);
    });
  };
  /** Where a read lands when no run is open: the one read in flight as the socket pauses. */
  const spill = Buffer.allocUnsafe(64 * 1024);
  /** Takes a view of the receiver's buffer: hashed, and copied into the run being gathered. */
  const take = (bytes: Buffer): Promise<void> | undefined => {
    // A relay that sends more than the signed size is not let fill the disk.
    if (received + bytes.length > pkg.size)
      throw new InstallError(
        'DIGEST_MISMATCH',
        `${pkg.name}@${pkg.version}: more than the signed ${pkg.size} bytes; refused`,
      );
    received += bytes.length;
    hash.update(bytes);
    let wait: Promise<void> | undefined;
    if (run && bytes.buffer === run.buffer && bytes.byteOffset === run.byteOffset + used) {
      // Read straight into the run (readInto below): nothing to copy.
      used += bytes.length;
      if (used === run.length) wait = flush();
    } else {
      // The first bytes after the answer's head, a chunked answer or a spilled read: copied into the run.
      if (bytes.buffer === run?.buffer) bytes = Buffer.from(bytes);
      while (bytes.length) {
        run ??= Buffer.allocUnsafe(UNPACK_CHUNK); // a read that came while no buffer was free
        const n = bytes.copy(run, used);
        used += n;
        bytes = bytes.subarray(n);
        if (used === run.length) wait = flush() ?? wait;
      }
    }
    return (received === pkg.size ? flush() : undefined) ?? wait;
  };
  try {
    for (let attempt = 0; received < pkg.size; attempt++) {
      try {
        const headers: Record<string, string> = received ? { range: `bytes=${received}-` } : {};
        const readInto = () => (run ? run.subarray(used) : spill);
        await receiveContent(x.relay, `content/${pkg.digest}`, { headers, signal: x.signal, readInto }, (status) => {
          // A relay that ignores the range sends it all again: what is already here is skipped.
          let skip = received && status !== 206 ? received : 0;
          return (bytes) => {
            if (skip) {
              const n = Math.min(skip, bytes.length);
              skip -= n;
              bytes = bytes.subarray(n);
              if (!bytes.length) return;
            }
            return take(bytes);
          };
        });
        await flush();
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
    input.end();
    const extracted = await extraction;
    verifyDownloaded(pkg, `sha256:${hash.digest('hex')}`, x.keys);
    if (!extracted) {
      if (refused instanceof ArchiveRefused)
        throw new InstallError('UNSAFE_ARCHIVE', `${pkg.name}@${pkg.version}: ${refused.message}`);
      throw new InstallError('EXTRACT_FAILED', `${pkg.name}@${pkg.version}: cannot extract: ${refused?.message}`);
    }
    return { dir: x.into, extracted };
  } catch (e) {
    input.destroy();
    await extraction;
    await rm(x.into, { recursive: true, force: true });
    throw e;
  }
}
