// Content downloads read into one reused buffer (net's `onread`). node:http hands over each socket
// read as a new buffer; for a 50 MB package that cost an agent more CPU than hashing and unpacking it
// (issue 14: about 0.3 s of CPU for 50 MB, against 0.05 s so). Only what a content answer needs is
// read: the status, the framing (a content-length or chunks) and the body.
import { isIP, connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { Client } from './client.ts';
import { Answer, type BodySink } from './content-answer.ts';
import { type ClientTls, HttpError } from './http-error.ts';

export type { BodySink } from './content-answer.ts';

/** A plain or TLS socket to the URL's host and port (TLS names the host unless it is an address). */
export function connectTo(url: URL, tls: ClientTls | undefined, onread?: unknown): Socket {
  const port = Number(url.port) || (url.protocol === 'https:' ? 443 : 80);
  const host = url.hostname.replace(/^\[|\]$/g, '');
  return url.protocol === 'https:'
    ? tlsConnect({ host, port, ...(isIP(host) ? {} : { servername: host }), ...tls, onread } as never)
    : netConnect({ host, port, onread } as never);
}

/** The event a socket from connectTo emits once it can carry a request. */
export const connectedEvent = (url: URL) => (url.protocol === 'https:' ? 'secureConnect' : 'connect');

export interface ContentRequest {
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** Longest silence (a large download may take long, but not stall). */
  idleMs?: number;
  /** The reused read buffer's size. */
  readBytes?: number;
  /** Where the next socket read goes, instead of the reused buffer (asked after each read): a sink
   * that is handed a view of exactly this memory need not copy it. */
  readInto?: () => Buffer;
}

/**
 * GETs `path` from the client's current server. `open` is told the 2xx status and gives the sink.
 * Resolves once the whole body (its content-length) has gone to the sink. Rejects with an HttpError
 * on a non-2xx answer (the server's message), an unreachable server, silence or a cut; with what
 * the sink threw when it refuses the bytes.
 */
export function receiveContent(c: Client, path: string, o: ContentRequest, open: (status: number) => BodySink) {
  const url = new URL(c.url(path));
  const headers: Record<string, string> = {
    host: url.host,
    authorization: `Bearer ${c.opts.token}`,
    ...o.headers,
    connection: 'close',
  };
  const head = Object.entries(headers).map(([k, v]) => `${k}: ${v}`);
  if (head.some((h) => /[\r\n]/.test(h))) return Promise.reject(new Error('a request header holds a line break'));
  const request = `GET ${url.pathname}${url.search} HTTP/1.1\r\n${head.join('\r\n')}\r\n\r\n`;
  const silence = o.idleMs ?? 60_000;

  return new Promise<void>((resolve, reject) => {
    let socket: Socket | undefined;
    let done = false;
    const finish = (e?: unknown) => {
      if (done) return;
      done = true;
      o.signal?.removeEventListener('abort', aborted);
      socket?.destroy();
      e === undefined ? resolve() : reject(e);
    };
    const aborted = () => finish(o.signal?.reason ?? new Error('aborted'));
    if (o.signal?.aborted) return aborted();
    o.signal?.addEventListener('abort', aborted, { once: true });

    const answer = new Answer(url.origin, open, finish);
    const onread = {
      buffer: o.readInto ?? Buffer.allocUnsafe(o.readBytes ?? 256 * 1024),
      callback: (n: number, buf: Buffer) => {
        if (done) return false;
        try {
          const wait = answer.take(buf.subarray(0, n));
          if (!wait) return true;
          wait.then(() => done || socket?.resume(), finish);
          return false;
        } catch (e) {
          finish(e);
          return false;
        }
      },
    };
    socket = connectTo(url, c.opts.tls, onread);
    socket.once(connectedEvent(url), () => socket?.write(request));
    socket.setTimeout(silence, () =>
      finish(new HttpError(0, 'ETIMEDOUT', `${url.origin} sent nothing for ${silence / 1000} s`)),
    );
    socket.on('error', (e: NodeJS.ErrnoException) =>
      finish(
        answer.started
          ? new HttpError(0, e.code ?? 'ECONNRESET', `${url.origin} broke off the download: ${e.message}`)
          : new HttpError(0, e.code ?? 'ECONNREFUSED', `cannot reach ${url.origin}: ${e.message}`),
      ),
    );
    // Once the body is whole, the sink's last promise ends it (the server may close first).
    socket.on('close', () => answer.whole || finish(answer.ended()));
  });
}
