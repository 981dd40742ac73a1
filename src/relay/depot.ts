// The depot: content by digest, fetched from upstream with Range resume, kept only once verified.
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { ContentCache } from '../common/content-cache.ts';
import type { Faults } from '../common/faults.ts';
import { type ArchiveLimits, DEFAULT_LIMITS, inspectArchive } from '../protocol/archive.ts';
import { verifyPackage } from '../protocol/crypto.ts';
import { digestPath } from '../protocol/digest.ts';
import type { FailureType } from '../protocol/failure-types.ts';
import { getStream } from '../protocol/get-stream.ts';
import type { PackageRef } from '../protocol/types.ts';
import type { Upstream } from './upstream.ts';

export class ContentError extends Error {
  override name = 'ContentError';
  constructor(
    readonly failureType: FailureType,
    message: string,
    readonly retryable = false,
  ) {
    super(message);
  }
}

/** Maps low-level errors to the failure types the alert center knows. */
export function failureTypeOf(e: unknown): ContentError {
  if (e instanceof ContentError) return e;
  const err = e as NodeJS.ErrnoException & { status?: number };
  const code = err.code ?? '';
  if (code === 'ENOSPC' || code === 'EDQUOT') return new ContentError('DISK_FULL', err.message);
  if (
    [
      'ECONNRESET',
      'ECONNREFUSED',
      'ETIMEDOUT',
      'EPIPE',
      'UND_ERR_SOCKET',
      'TimeoutError',
      'ABORT_ERR',
      'UND_ERR_CONNECT_TIMEOUT',
    ].includes(code) ||
    err.name === 'TimeoutError' ||
    err.status === 0 ||
    (err.status ?? 0) >= 500
  )
    return new ContentError('UNREACHABLE', err.message, true);
  return new ContentError('FETCH_FAILED', err.message);
}

export interface FetchOptions {
  rateLimitKBps?: number;
  signal?: AbortSignal;
  onStart?: (from: number) => void;
}

export class Depot {
  /** Content being fetched by this relay's endpoints, kept in memory while it is. */
  readonly hot = new ContentCache();
  constructor(
    private readonly dataDir: string,
    private readonly faults: Faults,
    private readonly limits: () => ArchiveLimits = () => DEFAULT_LIMITS,
  ) {}

  path(digest: string) {
    const p = digestPath(join(this.dataDir, 'depot'), digest);
    if (!p) throw new ContentError('FETCH_FAILED', `"${digest}" is not a sha256 digest`);
    return p;
  }

  has(digest: string) {
    return existsSync(this.path(digest));
  }

  async partialBytes(digest: string) {
    try {
      return (await stat(this.path(digest) + '.part')).size;
    } catch {
      return 0;
    }
  }

  /**
   * Fetches one package into the depot, resuming a `.part` left by an earlier attempt.
   * Verifies digest and signature before the file gets its final name.
   */
  private readonly inFlight = new Map<string, Promise<{ fetched: number; from: number }>>();

  /** One fetch per digest at a time: a job and a child relay asking together share it. */
  fetch(pkg: PackageRef, upstream: Upstream, contentPath: string, keys: readonly string[], opts: FetchOptions = {}) {
    const running = this.inFlight.get(pkg.digest);
    if (running) return running.then(() => ({ fetched: 0, from: pkg.size }));
    const p = this.fetchOnce(pkg, upstream, contentPath, keys, opts).finally(() => this.inFlight.delete(pkg.digest));
    this.inFlight.set(pkg.digest, p);
    return p;
  }

  private async fetchOnce(
    pkg: PackageRef,
    upstream: Upstream,
    contentPath: string,
    keys: readonly string[],
    opts: FetchOptions,
  ) {
    const final = this.path(pkg.digest);
    if (existsSync(final)) return { fetched: 0, from: pkg.size };
    if (!verifyPackage(keys, pkg, pkg.signature))
      throw new ContentError(
        'SIGNATURE_INVALID',
        `${pkg.name}@${pkg.version}: the signature does not verify with the master's key; refusing it`,
      );
    const part = final + '.part';
    await mkdir(dirname(final), { recursive: true });
    const hash = createHash('sha256');
    let from = await this.partialBytes(pkg.digest);
    if (from > pkg.size) {
      await rm(part, { force: true });
      from = 0;
    }
    // Resume: the bytes already on disk are part of the digest.
    if (from > 0)
      await pipeline(
        createReadStream(part, { end: from - 1 }),
        new Writable({ write: (c, _e, cb) => (hash.update(c), cb()) }),
      );
    opts.onStart?.(from);
    if (from < pkg.size) {
      this.faults.throwIf('relay.upstream.fetch');
      const res = await upstream.call(
        (c) =>
          // node:http, not fetch: no web streams in the path of every byte, and no undici in memory.
          getStream(c, contentPath, { headers: from ? { range: `bytes=${from}-` } : {}, signal: opts.signal }),
        opts.signal,
      );
      if (from > 0 && res.statusCode !== 206) {
        res.destroy();
        throw new ContentError('FETCH_FAILED', `upstream ignored the Range request (status ${res.statusCode})`);
      }
      const faults = this.faults;
      const started = Date.now();
      let received = 0;
      const limit = opts.rateLimitKBps ? opts.rateLimitKBps * 1024 : 0;
      const meter = new Transform({
        async transform(chunk: Buffer, _e, cb) {
          try {
            faults.throwIf('relay.depot.write');
            hash.update(chunk);
            received += chunk.length;
            if (limit) {
              const ahead = (received / limit) * 1000 - (Date.now() - started);
              if (ahead > 0) await sleep(ahead, undefined, { signal: opts.signal });
            }
            cb(null, chunk);
          } catch (e) {
            cb(e as Error);
          }
        },
      });
      await pipeline(res, meter, createWriteStream(part, { flags: 'a' }), { signal: opts.signal });
    }
    const got = `sha256:${hash.digest('hex')}`;
    const size = (await stat(part)).size;
    if (got !== pkg.digest || size !== pkg.size) {
      await rm(part, { force: true });
      throw new ContentError(
        'DIGEST_MISMATCH',
        `${pkg.name}@${pkg.version}: digest mismatch: expected ${pkg.digest} (${pkg.size} bytes), got ${got} (${size} bytes); the content was refused`,
      );
    }
    // The archive rules hold here too: a relay keeps and serves nothing an agent would refuse.
    try {
      await inspectArchive(part, this.limits());
    } catch (e) {
      await rm(part, { force: true });
      throw new ContentError('UNSAFE_ARCHIVE', `${pkg.name}@${pkg.version}: ${(e as Error).message}`);
    }
    await rename(part, final);
    return { fetched: pkg.size - from, from };
  }
}
