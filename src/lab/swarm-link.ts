// One simulated endpoint's kept-alive connection to its relay, for its JSON calls (long-poll and
// reports). One process plays thousands of endpoints: through node:http's client each answer cost
// the swarm about 150 µs of CPU, so with 10,000 endpoints it read the relay's answers a second after
// the relay had sent them, and timed itself rather than the relay.
import type { Socket } from 'node:net';
import { Answer, type BodySink } from '../protocol/content-answer.ts';
import { type ClientTls, HttpError } from '../protocol/http-error.ts';
import { connectedEvent, connectTo } from '../protocol/receive-content.ts';

const MAX_JSON_ANSWER = 4 * 1024 * 1024;

interface CallOptions {
  /** Longest silence while a call waits for its answer (default 30 s). */
  silenceMs?: number;
}

interface Pending {
  answer: Answer;
  /** The request went out on a connection that had served another: resent once if that one had closed. */
  reused: boolean;
  silenceMs: number;
  fail: (e: unknown) => void;
}

export class SwarmLink {
  private readonly url: URL;
  private socket?: Socket;
  private ready?: Promise<void>;
  private pending?: Pending;
  private closed = false;

  constructor(
    relay: string,
    private readonly token: string,
    private readonly tls?: ClientTls,
  ) {
    this.url = new URL(relay);
  }

  /** One call at a time: the JSON answer of a 2xx, else an HttpError with the relay's message. */
  async json<T>(method: 'GET' | 'POST', path: string, body?: unknown, o: CallOptions = {}): Promise<T> {
    const parts: Buffer[] = [];
    let size = 0;
    await this.call(method, path, body, o, () => (bytes) => {
      // An endpoint's answers are small (assignments with their proofs), as the agent's relay link says.
      if ((size += bytes.length) > MAX_JSON_ANSWER)
        throw new HttpError(0, 'BAD_ANSWER', `${this.url.origin} sent a JSON answer over 4 MiB; refused`);
      parts.push(bytes);
    });
    return JSON.parse(Buffer.concat(parts).toString('utf8')) as T;
  }

  /** A GET whose 2xx body goes to `sink` as it arrives (each view valid during the call only). */
  get(path: string, sink: (bytes: Buffer) => void, o: CallOptions = {}) {
    return this.call('GET', path, undefined, o, () => sink);
  }

  private async call(method: string, path: string, body: unknown, o: CallOptions, open: () => BodySink) {
    const payload = body === undefined ? '' : JSON.stringify(body);
    const head =
      `${method} /${path} HTTP/1.1\r\nhost: ${this.url.host}\r\nauthorization: Bearer ${this.token}\r\n` +
      (body === undefined
        ? '\r\n'
        : `content-type: application/json\r\ncontent-length: ${Buffer.byteLength(payload)}\r\n\r\n`);
    for (let tries = 0; ; tries++) {
      if (this.closed) throw new Error('the endpoint stopped');
      try {
        return await this.send(head + payload, !!this.socket, o, open);
      } catch (e) {
        // A kept-alive connection the relay closed as the request went out: sent again once, on a new one.
        if (!(e instanceof Resend) || tries) throw e instanceof Resend ? e.why : e;
      }
    }
  }

  /** Ends the call in progress (it fails) and every later one. */
  close() {
    this.closed = true;
    this.socket?.destroy();
  }

  private async send(request: string, reused: boolean, o: CallOptions, open: () => BodySink) {
    const socket = await this.connect();
    const origin = this.url.origin;
    return new Promise<void>((resolve, reject) => {
      let done = false;
      const finish = (e?: unknown) => {
        if (done) return;
        done = true;
        socket.setTimeout(0);
        this.pending = undefined;
        if (e === undefined) return resolve();
        // After a failure the connection's state is unknown: the next call opens another.
        this.drop(socket);
        reject(e);
      };
      const silenceMs = o.silenceMs ?? 30_000;
      socket.setTimeout(silenceMs);
      const answer = new Answer(origin, open, finish);
      this.pending = { answer, reused, silenceMs, fail: finish };
      socket.write(request);
    });
  }

  private connect(): Promise<Socket> {
    if (this.socket && this.ready) return this.ready.then(() => this.socket!);
    const socket = connectTo(this.url, this.tls);
    this.socket = socket;
    this.ready = new Promise<void>((resolve, reject) => {
      socket.once(connectedEvent(this.url), () => resolve());
      socket.once('error', (e) =>
        reject(new HttpError(0, 'ECONNREFUSED', `cannot reach ${this.url.origin}: ${e.message}`)),
      );
    });
    socket.on('data', (bytes: Buffer) => {
      const p = this.pending;
      if (!p) return this.drop(socket); // bytes nobody asked for
      try {
        p.answer.take(bytes);
      } catch (e) {
        p.fail(e);
      }
    });
    const lost = (e?: Error) => {
      this.drop(socket);
      const p = this.pending;
      if (!p) return;
      if (p.reused && !p.answer.started && !this.closed) return p.fail(new Resend(p.answer.ended()));
      p.fail(
        e && !p.answer.started ? new HttpError(0, 'ECONNRESET', `${this.url.origin}: ${e.message}`) : p.answer.ended(),
      );
    };
    socket.on('timeout', () => {
      const p = this.pending;
      p?.fail(new HttpError(0, 'ETIMEDOUT', `${this.url.origin} sent nothing for ${p.silenceMs / 1000} s`));
    });
    socket.on('error', lost);
    socket.on('close', () => lost());
    return this.ready.then(() => socket);
  }

  private drop(socket: Socket) {
    socket.destroy();
    if (this.socket === socket) this.socket = this.ready = undefined;
  }
}

class Resend extends Error {
  constructor(readonly why: unknown) {
    super('sent again');
  }
}
