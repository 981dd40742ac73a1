// Content downloads as the agent reads them (protocol/receive-content.ts): a real server on loopback
// sends each answer byte for byte, framed well or badly; what reaches the sink is what was sent.
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer as createHttpsServer } from 'node:https';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeLabTls } from '../src/lab/ca.ts';
import { Client } from '../src/protocol/client.ts';
import { receiveContent } from '../src/protocol/receive-content.ts';
import { tempDir, testTls } from './helpers.ts';

const body = randomBytes(3 * 1024 * 1024 + 17);
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
/** What the server does with the next request, given its raw text. */
let answer: (s: Socket, request: string) => void | Promise<void>;
let server: Server;
let client: Client;

/** Writes `bytes` in pieces of `size`, with a pause now and then so the client's reads split them. */
async function dribble(s: Socket, bytes: Buffer, size: number) {
  for (let at = 0; at < bytes.length; at += size) {
    s.write(bytes.subarray(at, at + size));
    if ((at / size) % 64 === 0) await sleep(1);
  }
}

beforeAll(async () => {
  server = createServer((s) => {
    let text = '';
    s.on('data', (d) => {
      text += d.toString('latin1');
      if (text.includes('\r\n\r\n')) void answer(s, text);
    });
    s.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  client = new Client({ baseUrl: `http://127.0.0.1:${(server.address() as { port: number }).port}`, token: 't0k' });
});
afterAll(() => server.close());

/** Downloads `path`, gathering what the sink was given. */
async function receive(o: { range?: string; idleMs?: number; signal?: AbortSignal; slowSink?: boolean } = {}) {
  const got: Buffer[] = [];
  let status = 0;
  await receiveContent(
    client,
    'content/x',
    { headers: o.range ? { range: o.range } : {}, idleMs: o.idleMs, signal: o.signal, readBytes: 64 * 1024 },
    (s) => {
      status = s;
      return (b) => {
        got.push(Buffer.from(b)); // a view of a reused buffer: copied, as the sink's contract says
        return o.slowSink ? sleep(1) : undefined;
      };
    },
  );
  return { status, body: Buffer.concat(got) };
}

describe('receiving content', () => {
  it('takes a body framed by its length, its head split across reads, with the token and range sent', async () => {
    let request = '';
    answer = async (s, r) => {
      request = r;
      await dribble(s, Buffer.from(`HTTP/1.1 206 Partial Content\r\nContent-Length: ${body.length}\r\n\r\n`), 7);
      await dribble(s, body, 5000);
    };
    const r = await receive({ range: 'bytes=10-' });
    expect(r.status).toBe(206);
    expect(sha(r.body)).toBe(sha(body));
    expect(request).toMatch(/^GET \/content\/x HTTP\/1\.1\r\n/);
    expect(request).toMatch(/\r\nauthorization: Bearer t0k\r\n/);
    expect(request).toMatch(/\r\nrange: bytes=10-\r\n/);
  });

  it('takes a chunked body, chunk lines split across reads, and waits for a slow sink', async () => {
    answer = async (s) => {
      const parts: Buffer[] = [Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n')];
      for (let at = 0; at < body.length; at += 70_001) {
        const c = body.subarray(at, at + 70_001);
        parts.push(Buffer.from(`${c.length.toString(16)};ext=1\r\n`), c, Buffer.from('\r\n'));
      }
      parts.push(Buffer.from('0\r\nx-trailer: 1\r\n\r\n'));
      await dribble(s, Buffer.concat(parts), 4093);
    };
    const r = await receive({ slowSink: true });
    expect([r.status, sha(r.body)]).toEqual([200, sha(body)]);
  });

  it("gives an error answer's code and message, and cuts an endless one off", async () => {
    const json = JSON.stringify({ error: { code: 'FANOUT_ERR_BLOB_UNKNOWN', message: 'no such content here' } });
    answer = (s) => void s.end(`HTTP/1.1 404 Not Found\r\nContent-Length: ${json.length}\r\n\r\n${json}`);
    await expect(receive()).rejects.toMatchObject({
      status: 404,
      code: 'FANOUT_ERR_BLOB_UNKNOWN',
      message: 'no such content here',
    });
    answer = async (s) => {
      s.write('HTTP/1.1 500 Oops\r\nTransfer-Encoding: chunked\r\n\r\n');
      for (let i = 0; i < 100 && !s.destroyed; i++) s.write(`1000\r\n${'x'.repeat(4096)}\r\n`);
    };
    const e = await receive().catch((x) => x);
    expect([e.status, e.code, e.message.length]).toEqual([500, 'HTTP_500', 64 * 1024]);
  });

  it('refuses what is not a readable answer, naming what is wrong', async () => {
    const cases: [string, RegExp][] = [
      [
        'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nabcdef',
        /neither by one content-length nor in chunks \(5, 6\)/,
      ],
      [
        'HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nabc',
        /neither by one content-length nor in chunks \(neither given\)/,
      ],
      ['HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n', /\(gzip, chunked\)/],
      ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n', /chunk size that is not hexadecimal \("zz"\)/],
      ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n', /a chunk longer than its size/],
      ['SSH-2.0-OpenSSH\r\n\r\n', /not HTTP\/1\.1 \("SSH-2\.0-OpenSSH"\)/],
      [`HTTP/1.1 200 OK\r\nX: ${'y'.repeat(70_000)}`, /an answer head longer than 65536 bytes/],
    ];
    for (const [text, why] of cases) {
      answer = (s) => void s.end(text);
      await expect(receive(), text.slice(0, 60)).rejects.toMatchObject({
        code: 'BAD_ANSWER',
        message: expect.stringMatching(why),
      });
    }
  });

  it('fails a download cut short, a silent server and an aborted download', async () => {
    answer = async (s) => {
      s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n`);
      await dribble(s, body.subarray(0, 100_000), 10_000);
      s.end();
    };
    await expect(receive()).rejects.toMatchObject({
      code: 'ECONNRESET',
      message: expect.stringMatching(`ended the download with ${body.length - 100_000} bytes still to come`),
    });
    answer = (s) => void s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\nabc`);
    await expect(receive({ idleMs: 300 })).rejects.toMatchObject({
      code: 'ETIMEDOUT',
      message: /sent nothing for 0.3 s/,
    });
    const stop = new AbortController();
    setTimeout(() => stop.abort(new Error('agent stopping')), 200);
    await expect(receive({ signal: stop.signal })).rejects.toThrow('agent stopping');
    await expect(
      receiveContent(new Client({ baseUrl: 'http://127.0.0.1:1', token: 't' }), 'content/x', {}, () => () => undefined),
    ).rejects.toMatchObject({ code: 'ECONNREFUSED', message: /cannot reach http:\/\/127.0.0.1:1/ });
  });

  it('downloads over TLS from a server the CA vouches for, and refuses one it does not', async () => {
    const t = testTls();
    if (!t) return;
    const https = createHttpsServer({ cert: readFileSync(t.cert), key: readFileSync(t.key) }, (_req, res) => {
      res.setHeader('content-length', body.length);
      res.end(body);
    });
    await new Promise<void>((r) => https.listen(0, '127.0.0.1', r));
    try {
      const url = `https://localhost:${(https.address() as { port: number }).port}`;
      const got: Buffer[] = [];
      const trusted = new Client({ baseUrl: url, token: 't', tls: { ca: readFileSync(t.ca, 'utf8') } });
      await receiveContent(trusted, 'content/x', {}, () => (b) => void got.push(Buffer.from(b)));
      expect(sha(Buffer.concat(got))).toBe(sha(body));
      const other = await makeLabTls(join(tempDir('other-ca'), 'tls'));
      const stranger = new Client({ baseUrl: url, token: 't', tls: { ca: readFileSync(other.ca, 'utf8') } });
      await expect(receiveContent(stranger, 'content/x', {}, () => () => undefined)).rejects.toMatchObject({
        code: expect.stringMatching(/CERT|SELF_SIGNED|UNABLE/),
      });
    } finally {
      https.close();
    }
  });
});
