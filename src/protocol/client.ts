// A small HTTP/JSON client used by every part: bearer token, JSON bodies, errors with the server's message.
import { type ClientTls, HttpError, httpError } from './http-error.ts';
import { nodeRequest, readText } from './node-request.ts';

export { type ClientTls, HttpError, httpError } from './http-error.ts';

export interface ClientOptions {
  baseUrl: string;
  /** Servers tried in turn when the current one cannot be reached or is unavailable (several masters). */
  fallbacks?: string[];
  /** Told when requests move to another server. */
  onSwitch?: (from: string, to: string, why: string) => void;
  token: string;
  timeoutMs?: number;
  /** Headers that prove who calls, instead of the bearer token (the master signing its requests to relays). */
  authorize?: (method: string, path: string, body: unknown) => Record<string, string>;
  tls?: ClientTls;
  /** The largest JSON answer taken (default 256 MiB); past it the answer is refused. */
  maxAnswerBytes?: number;
}

export class Client {
  private dispatcher?: Promise<(url: string, init: object) => Promise<Response>>;
  private readonly servers: string[];
  private current = 0;
  constructor(readonly opts: ClientOptions) {
    this.servers = [opts.baseUrl, ...(opts.fallbacks ?? [])];
  }

  /** The server requests go to now. */
  get baseUrl() {
    return this.servers[this.current];
  }

  /** With a CA or a client certificate, requests go through undici with them (loaded only then). */
  private tlsFetch() {
    const tls = this.opts.tls;
    if (!tls) return undefined;
    this.dispatcher ??= import('undici').then((mod) => {
      // A CommonJS module: bundled, its exports sit on `default`.
      const { Agent, fetch: undiciFetch } = ((mod as unknown as { default?: typeof mod }).default ?? mod) as typeof mod;
      const dispatcher = new Agent({ connect: { ca: tls.ca, cert: tls.cert, key: tls.key } });
      return (url: string, init: object) =>
        undiciFetch(url, { ...init, dispatcher } as never) as unknown as Promise<Response>;
    });
    return this.dispatcher;
  }

  url(path: string, base = this.baseUrl) {
    return new URL(path, base.endsWith('/') ? base : `${base}/`).toString();
  }

  /** One request through fetch (streamed bodies, such as uploads); with fallbacks, as `failover`. */
  async raw(
    method: string,
    path: string,
    init: { body?: BodyInit; headers?: Record<string, string>; signal?: AbortSignal; timeoutMs?: number } = {},
  ) {
    // A streamed body can be sent once only.
    const canRetry = this.servers.length > 1 && (init.body === undefined || typeof init.body === 'string');
    return this.failover(canRetry, init.signal, (base) => this.once(base, method, path, init));
  }

  /** With fallbacks, a server that is down or unavailable hands the request to the next in turn. */
  private async failover<T>(canRetry: boolean, signal: AbortSignal | undefined, attempt: (base: string) => Promise<T>) {
    let again = true;
    for (let moved = 0; ; ) {
      const base = this.baseUrl;
      try {
        return await attempt(base);
      } catch (e) {
        const down = e instanceof HttpError && (e.status === 0 || e.status === 502 || e.status === 503);
        if (!canRetry || !down || moved >= this.servers.length - 1 || signal?.aborted) throw e;
        // A kept-alive connection the server closed while idle looks like a dead server: one more try first.
        if (again && ['UND_ERR_SOCKET', 'ECONNRESET'].includes((e as HttpError).code)) {
          again = false;
          continue;
        }
        moved++;
        if (this.baseUrl !== base) continue; // a concurrent request has moved on already
        this.current = (this.current + 1) % this.servers.length;
        this.opts.onSwitch?.(base, this.baseUrl, (e as Error).message);
      }
    }
  }

  private async once(
    base: string,
    method: string,
    path: string,
    init: { body?: BodyInit; headers?: Record<string, string>; signal?: AbortSignal; timeoutMs?: number } = {},
  ) {
    const signals = [AbortSignal.timeout(init.timeoutMs ?? this.opts.timeoutMs ?? 30_000)];
    if (init.signal) signals.push(init.signal);
    let res: Response;
    try {
      const tlsFetch = await this.tlsFetch();
      res = await (tlsFetch ?? fetch)(this.url(path, base), {
        method,
        body: init.body,
        headers: { authorization: `Bearer ${this.opts.token}`, ...init.headers },
        signal: AbortSignal.any(signals),
        // Streams (package uploads) need half-duplex; harmless for other bodies.
        ...({ duplex: 'half' } as object),
      });
    } catch (e) {
      const cause = (e as { cause?: { code?: string } }).cause;
      if ((e as Error).name === 'AbortError' && init.signal?.aborted) throw e;
      if ((e as Error).name === 'TimeoutError') throw new HttpError(0, 'ETIMEDOUT', `${base} did not answer in time`);
      const why = cause?.code ?? (cause as { message?: string } | undefined)?.message ?? (e as Error).message;
      throw new HttpError(0, cause?.code ?? 'ECONNREFUSED', `cannot reach ${base}: ${why}`);
    }
    if (!res.ok) throw httpError(res.status, await res.text(), res.statusText);
    return res;
  }

  /** A JSON call over node:http(s) (node-request.ts), with failover. */
  async json<T = any>(
    method: string,
    path: string,
    body?: unknown,
    opts: { timeoutMs?: number; signal?: AbortSignal } = {},
  ): Promise<T> {
    const target = new URL(this.url(path));
    const auth = this.opts.authorize?.(method, target.pathname + target.search, body) ?? {};
    const text = await this.failover(this.servers.length > 1, opts.signal, async (base) =>
      readText(
        await nodeRequest(this, this.url(path, base), {
          method,
          signal: opts.signal,
          timeoutMs: opts.timeoutMs ?? this.opts.timeoutMs ?? 30_000,
          body: body === undefined ? undefined : JSON.stringify(body),
          headers: {
            authorization: `Bearer ${this.opts.token}`,
            ...(body === undefined ? {} : { 'content-type': 'application/json' }),
            ...auth,
          },
        }),
        this.opts.maxAnswerBytes ?? 256 * 1024 * 1024,
        base,
      ),
    );
    return (text ? JSON.parse(text) : undefined) as T;
  }

  get<T = any>(path: string, opts?: { timeoutMs?: number; signal?: AbortSignal }) {
    return this.json<T>('GET', path, undefined, opts);
  }
  post<T = any>(path: string, body?: unknown, opts?: { timeoutMs?: number; signal?: AbortSignal }) {
    return this.json<T>('POST', path, body ?? {}, opts);
  }
}
