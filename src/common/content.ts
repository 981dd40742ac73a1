// Serving a blob with HTTP Range, used by the master (to relays) and relays (to agents and child relays).
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { type Readable, Transform } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { FanoutError } from '../protocol/errors.ts';

const PACE_SLICE = 64 * 1024;

/** Content of a known size, read from `start` to `end` inclusive. */
export interface BlobSource {
  size: number;
  stream(start: number, end: number): Readable;
}

export async function fileSource(path: string): Promise<BlobSource | undefined> {
  const size = await stat(path).then(
    (s) => s.size,
    () => undefined,
  );
  // 1 MiB reads: a sixteenth of the system calls and chunks of the default 64 KiB, for large packages.
  return size === undefined
    ? undefined
    : { size, stream: (start, end) => createReadStream(path, { start, end, highWaterMark: 1 << 20 }) };
}

export async function sendBlob(
  req: FastifyRequest,
  reply: FastifyReply,
  source: BlobSource | string | undefined,
  onBytes?: (n: number) => void,
  /** Waits before each chunk goes out (a bandwidth cap shared by several downloads). */
  pace?: { take(bytes: number): Promise<void> },
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
