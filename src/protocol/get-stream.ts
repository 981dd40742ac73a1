// Requests over node:http(s) whose answer is read as a Node stream: for content, where web streams
// (fetch) cost an endpoint several times the CPU of the download itself (issue 14), and for
// `fanout swarm`, where one process plays thousands of endpoints.
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { type Client, HttpError, httpError } from './client.ts';

const agents = new WeakMap<Client, { http: HttpAgent; https: HttpsAgent }>();

function agentsOf(c: Client) {
  let a = agents.get(c);
  if (!a) {
    const tls = c.opts.tls ?? {};
    a = {
      http: new HttpAgent({ keepAlive: true }),
      https: new HttpsAgent({ keepAlive: true, ca: tls.ca, cert: tls.cert, key: tls.key }),
    };
    agents.set(c, a);
  }
  return a;
}

interface StreamOptions {
  headers?: Record<string, string>;
  signal?: AbortSignal;
  idleMs?: number;
}

/**
 * GET `path` from the client's current server; resolves once the status is 2xx with the body still
 * to read. `idleMs` bounds silence, not the whole transfer: a large file on a slow link may take long.
 */
export const getStream = (c: Client, path: string, o: StreamOptions = {}) => request(c, 'GET', path, o);

/** A JSON request and its JSON answer (errors as HttpError, like Client's). */
export async function requestJson<T>(
  c: Client,
  method: string,
  path: string,
  o: StreamOptions & { body?: unknown } = {},
) {
  const res = await request(c, method, path, {
    ...o,
    body: o.body === undefined ? undefined : JSON.stringify(o.body),
    headers: { ...(o.body === undefined ? {} : { 'content-type': 'application/json' }), ...o.headers },
  });
  const chunks: Buffer[] = [];
  for await (const b of res) chunks.push(b as Buffer);
  return JSON.parse(Buffer.concat(chunks).toString('utf8')) as T;
}

function request(
  c: Client,
  method: string,
  path: string,
  o: StreamOptions & { body?: string },
): Promise<IncomingMessage> {
  const url = new URL(c.url(path));
  const secure = url.protocol === 'https:';
  return new Promise((resolve, reject) => {
    const req = (secure ? httpsRequest : httpRequest)(url, {
      method,
      agent: secure ? agentsOf(c).https : agentsOf(c).http,
      headers: { authorization: `Bearer ${c.opts.token}`, ...o.headers },
      signal: o.signal,
    });
    req.setTimeout(o.idleMs ?? 60_000, () =>
      req.destroy(new HttpError(0, 'ETIMEDOUT', `${url.origin} sent nothing for ${(o.idleMs ?? 60_000) / 1000} s`)),
    );
    req.on('error', (e) =>
      reject(
        e instanceof HttpError || o.signal?.aborted
          ? e
          : new HttpError(
              0,
              (e as NodeJS.ErrnoException).code ?? 'ECONNREFUSED',
              `cannot reach ${url.origin}: ${e.message}`,
            ),
      ),
    );
    req.on('response', (res) => {
      const status = res.statusCode ?? 0;
      if (status >= 200 && status < 300) return resolve(res);
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (b: Buffer) => {
        // An error body is a short JSON message; more than that is not read.
        if ((size += b.length) <= 64 * 1024) chunks.push(b);
      });
      res.on('error', reject);
      res.on('end', () => reject(httpError(status, Buffer.concat(chunks).toString('utf8'), res.statusMessage)));
    });
    req.end(o.body);
  });
}
