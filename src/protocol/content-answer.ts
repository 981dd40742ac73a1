// One content answer as it arrives (receive-content.ts): its head, then its body, framed by length
// or in chunks, to the caller's sink; an error answer's body is kept as its message.
import { BadFraming, type BodyFrame, ChunkedFrame, LengthFrame } from './chunked.ts';
import { HttpError, httpError, MAX_ERROR_BODY } from './http-error.ts';

/** Where the body goes. Each call gets a view of a reused buffer, valid only during the call: copy
 * what is kept. A promise returned holds the download until it settles. */
export type BodySink = (bytes: Buffer) => void | Promise<void>;

const MAX_HEAD = 64 * 1024;

/** One answer as it arrives: its head, then its body to the sink (or, for an error, kept as text). */
export class Answer {
  started = false;
  /** Every byte of the body went to the sink. */
  whole = false;
  private head: Buffer[] = [];
  private headBytes = 0;
  private status = 0;
  private reason = '';
  private frame?: BodyFrame;
  private sink?: BodySink;
  private error?: Buffer[];
  private errorBytes = 0;

  constructor(
    private readonly origin: string,
    private readonly open: (status: number) => BodySink,
    private readonly finish: (e?: unknown) => void,
  ) {}

  /** Bytes read from the socket; a promise returned pauses the socket until it settles. */
  take(bytes: Buffer): Promise<void> | undefined {
    this.started = true;
    if (!this.frame) {
      const body = this.readHead(bytes);
      if (!body) return undefined;
      bytes = body;
    }
    let wait: Promise<void> | undefined;
    try {
      this.frame!.take(bytes, (data) => {
        if (this.error) return this.keepError(data);
        wait = this.sink!(data) ?? wait;
      });
    } catch (e) {
      throw e instanceof BadFraming ? this.refused(e.message) : e;
    }
    if (this.error && (this.frame!.complete || this.errorBytes >= MAX_ERROR_BODY)) {
      this.finish(this.ended());
      return undefined;
    }
    if (!this.frame!.complete) return wait;
    // The body is whole once the sink has taken its last bytes; nothing more is read.
    this.whole = true;
    Promise.resolve(wait).then(() => this.finish(), this.finish);
    return new Promise(() => undefined);
  }

  /** Why the answer ended before its body was whole. */
  ended(): HttpError {
    if (this.error) return httpError(this.status, Buffer.concat(this.error).toString('utf8'), this.reason);
    if (!this.frame) return new HttpError(0, 'ECONNRESET', `${this.origin} closed the connection without an answer`);
    return new HttpError(0, 'ECONNRESET', `${this.origin} ended the download with ${this.frame.missing}`);
  }

  /** Gathers the head; returns the body's first bytes once it is complete. */
  private readHead(bytes: Buffer): Buffer | undefined {
    this.head.push(Buffer.from(bytes));
    this.headBytes += bytes.length;
    const all = Buffer.concat(this.head, this.headBytes);
    const end = all.indexOf('\r\n\r\n');
    if (end < 0) {
      if (this.headBytes > MAX_HEAD) throw this.refused(`an answer head longer than ${MAX_HEAD} bytes`);
      return undefined;
    }
    const [line, ...fields] = all.subarray(0, end).toString('latin1').split('\r\n');
    const m = /^HTTP\/1\.[01] (\d{3})(?: (.*))?$/.exec(line);
    if (!m) throw this.refused(`an answer that is not HTTP/1.1 ("${line.slice(0, 80)}")`);
    const field = (name: string) =>
      fields
        .filter((f) => f.slice(0, f.indexOf(':')).trim().toLowerCase() === name)
        .map((f) =>
          f
            .slice(f.indexOf(':') + 1)
            .trim()
            .toLowerCase(),
        );
    this.status = Number(m[1]);
    this.reason = m[2] ?? '';
    const lengths = field('content-length');
    const codings = field('transfer-encoding');
    if (codings.length) this.frame = codings.join(',') === 'chunked' ? new ChunkedFrame() : undefined;
    else if (lengths.length === 1 && /^\d{1,15}$/.test(lengths[0])) this.frame = new LengthFrame(Number(lengths[0]));
    if (!this.frame)
      throw this.refused(
        `an answer framed neither by one content-length nor in chunks (${[...codings, ...lengths].join(', ') || 'neither given'})`,
      );
    if (this.status < 200 || this.status >= 300) this.error = [];
    else this.sink = this.open(this.status);
    return all.subarray(end + 4);
  }

  private keepError(data: Buffer) {
    const part = data.subarray(0, MAX_ERROR_BODY - this.errorBytes);
    this.error!.push(Buffer.from(part));
    this.errorBytes += part.length;
  }

  private refused(what: string) {
    return new HttpError(0, 'BAD_ANSWER', `${this.origin} sent ${what}; refused`);
  }
}
