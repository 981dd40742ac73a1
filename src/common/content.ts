// Serving a blob with HTTP Range, used by the master (to relays) and relays (to agents and child relays).
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import { type Readable, Transform } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { FanoutError } from '../protocol/errors.ts';
import { type ContentCache, fromMemory } from './content-cache.ts';
import { openShared } from './shared-file.ts';

const PACE_SLICE = 64 * 1024;

/** Content of a known size, read from `start` to `end` inclusive. */
export interface BlobSource {
  size: number;
  stream(start: number, end: number): Readable;
  /** A file on this host: served by `pump` (reused buffers), not as a stream. */
  file?: string;
  /** Which file is at that path now (device, inode, size): downloads share it only while it stays. Not
   * its times: the relay touches a depot file it serves once a minute (eviction order). */
  version?: string;
}

export async function fileSource(path: string): Promise<BlobSource | undefined> {
  const st = await stat(path).catch(() => undefined);
  // 1 MiB reads: a sixteenth of the system calls and chunks of the default 64 KiB, for large packages.
  return st
    ? {
        size: st.size,
        file: path,
        version: `${st.dev}:${st.ino}:${st.size}`,
        stream: (start, end) => createReadStream(path, { start, end, highWaterMark: 1 << 20 }),
      }
    : undefined;
}

export async function sendBlob(
  req: FastifyRequest,
  reply: FastifyReply,
  source: BlobSource | string | undefined,
  onBytes?: (n: number) => void,
  /** Waits before each chunk goes out (a bandwidth cap shared by several downloads). */
  pace?: { take(bytes: number): Promise<void> },
  /** Where a file being fetched by many is kept in memory (a relay's). */
  cache?: ContentCache,
) {
  const blob = typeof source === 'string' ? await fileSource(source) : source;
  if (!blob) throw new FanoutError('FANOUT_ERR_BLOB_UNKNOWN', { digest: req.url.split('?')[0].split('/').pop() ?? '' });
  const size = blob.size;
  let start = 0;
  let end = size - 1;
  const range = req.headers.range;
  if (range) {
    const m = /^bytes=(\d+)-(\d*)$/.exec(range);
    if (!m || Number(m[1]) > end + 1) {
      return reply
        .status(416)
        .header('content-range', `bytes */${size}`)
        .send({
          error: { code: 'FANOUT_ERR_INPUT_INVALID', message: `range "${range}" is not satisfiable for ${size} bytes` },
        });
    }
    start = Number(m[1]);
    if (m[2]) end = Math.min(end, Number(m[2]));
    reply.status(206).header('content-range', `bytes ${start}-${end}/${size}`);
  }
  reply
    .header('accept-ranges', 'bytes')
    .header('content-type', 'application/octet-stream')
    .header('content-length', String(Math.max(0, end - start + 1)));
  if (start > end) return reply.send('');
  if (blob.file && !pace) {
    // Opened and read before anything is sent: a file that cannot be read still answers a JSON error.
    const kept = blob.version ? cache?.get(blob.file, blob.version, size) : undefined;
    const send = kept ? await fromMemory(kept, start, end) : await pump(blob.file, blob.version, start, end);
    // Fastify's stream piping is bypassed: the pump writes the headers and the body itself.
    reply.hijack();
    reply.raw.writeHead(reply.statusCode, reply.getHeaders() as Record<string, string>);
    if (req.method === 'HEAD') reply.raw.end();
    await send(req.method === 'HEAD' ? undefined : reply.raw, onBytes).catch((e: NodeJS.ErrnoException) => {
      // A client going away is ordinary (an agent stopped, a resume later); a file that fails is not.
      const gone = ['ECONNRESET', 'EPIPE', 'ERR_STREAM_DESTROYED'].includes(e.code ?? '');
      if (gone) req.log.debug({ url: req.url, why: e.message }, 'client went away mid-download');
      else req.log.warn({ err: e, url: req.url }, 'content download cut short');
      reply.raw.destroy();
    });
    return reply;
  }
  let stream: Readable = blob.stream(start, end);
  if (pace)
    stream = stream.pipe(
      new Transform({
        // Paced in 64 KiB slices: a whole 1 MiB read let out at once would burst past a thin cap.
        transform(chunk: Buffer, _e, cb) {
          const slices = async () => {
            for (let at = 0; at < chunk.length; at += PACE_SLICE) {
              const part = chunk.subarray(at, at + PACE_SLICE);
              await pace.take(part.length);
              this.push(part);
            }
          };
          slices().then(() => cb(), cb);
        },
      }),
    );
  if (onBytes) stream.on('data', (c) => onBytes((c as Buffer).length));
  return reply.send(stream);
}

const PUMP_BUFFER = 512 * 1024;

/**
 * Sends bytes start..end of a file through two reused buffers: one being read while the other is
 * written. A stream allocates a new buffer for every read; at hundreds of MB a second that garbage
 * and its copies cost about a third more time and CPU than nginx's sendfile (issue 14), this about 5 %.
 * The file is opened and its first part read before this returns the sender.
 */
async function pump(path: string, version: string | undefined, start: number, end: number) {
  const file = openShared(path, version);
  const fh = await file.fh.catch(async (e) => {
    await file.release();
    throw e;
  });
  // No bigger than what is sent: thousands of endpoints fetching a small package hold small buffers.
  const size = Math.min(PUMP_BUFFER, end - start + 1);
  const buffers = [Buffer.allocUnsafe(size), size < end - start + 1 ? Buffer.allocUnsafe(size) : Buffer.alloc(0)];
  const read = async (buf: Buffer, at: number) => {
    const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, end - at + 1), at);
    if (!bytesRead) throw new Error(`${path} ended at ${at} of ${end + 1} bytes`);
    return buf.subarray(0, bytesRead);
  };
  let first: Buffer;
  try {
    first = await read(buffers[0], start);
  } catch (e) {
    await file.release();
    throw e;
  }
  return async (res: ServerResponse | undefined, onBytes?: (n: number) => void) => {
    let writing: Promise<void> = Promise.resolve();
    // Kept, not thrown from the callback: a rejection nobody awaits yet would end the process.
    let failed: Error | undefined;
    // A client that goes away ends the wait for a write, whatever becomes of its callback.
    const closed = new Promise<void>((resolve) => res?.once('close', resolve));
    try {
      let chunk = first;
      for (let at = start + chunk.length, i = 1; res && !res.destroyed; i++) {
        // The other buffer must be on its way before this one is handed over (the next read reuses it).
        await Promise.race([writing, closed]);
        if (failed) throw failed;
        const out = chunk;
        writing = new Promise((resolve) => res.write(out, (e) => ((failed ??= e ?? undefined), resolve())));
        onBytes?.(out.length);
        if (at > end) break;
        chunk = await read(buffers[i % 2], at);
        at += chunk.length;
      }
      await Promise.race([writing, closed]);
      if (failed) throw failed;
      if (res && !res.destroyed) res.end();
    } finally {
      await file.release();
    }
  };
}
