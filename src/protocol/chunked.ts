// The body of an HTTP/1.1 answer, framed by its content-length or in chunks (RFC 9112 §7.1), read as
// it arrives: `take` hands on the data within each read and says when the body is complete.

const MAX_LINE = 4096;

/** The body's framing is broken: the answer cannot be read further. */
export class BadFraming extends Error {}

export interface BodyFrame {
  /** Gives the data within `bytes` (views of them) to `out`; what follows the body is ignored. */
  take(bytes: Buffer, out: (data: Buffer) => void): void;
  readonly complete: boolean;
  /** For messages: what is still missing. */
  readonly missing: string;
}

export class LengthFrame implements BodyFrame {
  constructor(private left: number) {}
  get complete() {
    return this.left === 0;
  }
  get missing() {
    return `${this.left} bytes still to come`;
  }
  take(bytes: Buffer, out: (data: Buffer) => void) {
    const part = bytes.subarray(0, this.left);
    this.left -= part.length;
    if (part.length) out(part);
  }
}

export class ChunkedFrame implements BodyFrame {
  private state: 'size' | 'data' | 'end-of-data' | 'trailer' | 'done' = 'size';
  private line = '';
  private left = 0;
  get complete() {
    return this.state === 'done';
  }
  get missing() {
    return this.state === 'data' ? `${this.left} bytes of a chunk still to come` : 'the last chunk still to come';
  }

  take(bytes: Buffer, out: (data: Buffer) => void) {
    let at = 0;
    while (at < bytes.length && this.state !== 'done') {
      if (this.state === 'data') {
        const part = bytes.subarray(at, at + this.left);
        at += part.length;
        this.left -= part.length;
        out(part);
        if (!this.left) this.state = 'end-of-data';
        continue;
      }
      const nl = bytes.indexOf(10, at);
      this.line += bytes.toString('latin1', at, nl < 0 ? bytes.length : nl + 1);
      at = nl < 0 ? bytes.length : nl + 1;
      if (this.line.length > MAX_LINE) throw new BadFraming(`a chunk line longer than ${MAX_LINE} bytes`);
      if (nl >= 0) this.endLine(this.line.replace(/\r?\n$/, ''));
    }
  }

  private endLine(line: string) {
    this.line = '';
    if (this.state === 'end-of-data') {
      if (line) throw new BadFraming('a chunk longer than its size');
      this.state = 'size';
    } else if (this.state === 'trailer') {
      if (!line) this.state = 'done';
    } else {
      const m = /^([0-9a-fA-F]{1,12})[ \t]*(?:;.*)?$/.exec(line);
      if (!m) throw new BadFraming(`a chunk size that is not hexadecimal ("${line.slice(0, 40)}")`);
      this.left = Number.parseInt(m[1], 16);
      this.state = this.left ? 'data' : 'trailer';
    }
  }
}
