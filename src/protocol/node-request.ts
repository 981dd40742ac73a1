// Requests over node:http(s), answered as a Node stream. JSON calls and content downloads go this way:
// fetch (web streams, undici) costs an idle endpoint about 25 MB more memory and several times the
// CPU per request (issue 14). A non-2xx answer or an unreachable server is an HttpError.
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { type ClientTls, HttpError, httpError, MAX_ERROR_BODY } from './http-error.ts';

/** Whose connections these are: each client keeps its own kept-alive connections. */
type Owner = { readonly opts: { tls?: ClientTls } };
const agents = new WeakMap<Owner, { http: HttpAgent; https: HttpsAgent }>();

function agentsOf(o: Owner) {
  let a = agents.get(o);
  if (!a) {
    const tls = o.opts.tls ?? {};
    a = {
      http: new HttpAgent({ keepAlive: true }),
      https: new HttpsAgent({ keepAlive: true, ca: tls.ca, cert: tls.cert, key: tls.key }),
    };
    agents.set(o, a);
  }
  return a;
}

export interface NodeRequestOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  signal?: AbortSignal;
  /** Longest silence (a large download may take long, but not stall). */
  idleMs?: number;
  /** Longest the whole answer may take to start. */
  timeoutMs?: number;
}

/** Resolves once the status is 2xx, with the body still to read. */
export function nodeRequest(owner: Owner, target: string, o: NodeRequestOptions = {}): Promise<IncomingMessage> {
  const url = new URL(target);
  const secure = url.protocol === 'https:';
  const silence = o.idleMs ?? 60_000;
  return new Promise((resolve, reject) => {
    const req = (secure ? httpsRequest : httpRequest)(url, {
      method: o.method ?? 'GET',
      agent: secure ? agentsOf(owner).https : agentsOf(owner).http,
      headers: o.body === undefined ? o.headers : { ...o.headers, 'content-length': String(Buffer.byteLength(o.body)) },
      signal: o.signal,
    });
    const late =
      o.timeoutMs === undefined
        ? undefined
        : setTimeout(
            () => req.destroy(new HttpError(0, 'ETIMEDOUT', `${url.origin} did not answer in time`)),
            o.timeoutMs,
          );
    req.setTimeout(silence, () =>
      req.destroy(new HttpError(0, 'ETIMEDOUT', `${url.origin} sent nothing for ${silence / 1000} s`)),
    );
    req.on('error', (e) => {
      clearTimeout(late);
      reject(
        e instanceof HttpError || o.signal?.aborted
          ? e
          : new HttpError(
              0,
              (e as NodeJS.ErrnoException).code ?? 'ECONNREFUSED',
              `cannot reach ${url.origin}: ${e.message}`,
            ),
      );
    });
    req.on('response', (res) => {
      clearTimeout(late);
      const status = res.statusCode ?? 0;
      if (status >= 200 && status < 300) return resolve(res);
      // An error body is a short JSON message; past 64 KiB it is cut off.
      readText(res, MAX_ERROR_BODY).then((text) => reject(httpError(status, text, res.statusMessage)), reject);
    });
    req.end(o.body);
  });
}

/**
 * The body as text, at most `max` bytes of it: past that the answer is cut off (an answer that never
 * ends must neither fill the memory nor hold the caller forever). With `refuseFrom` (the server, for
 * the message) a cut answer is refused; without, what came first is kept (an error's message).
 */
export async function readText(res: IncomingMessage, max = Number.POSITIVE_INFINITY, refuseFrom?: string) {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const b of res) {
    if ((size += (b as Buffer).length) <= max) {
      chunks.push(b as Buffer);
      continue;
    }
    res.destroy();
    if (refuseFrom)
      throw new HttpError(0, 'ANSWER_TOO_LARGE', `${refuseFrom} answered more than ${max} bytes; refused`);
    chunks.push((b as Buffer).subarray(0, (b as Buffer).length - (size - max)));
    break;
  }
  return Buffer.concat(chunks).toString('utf8');
}
