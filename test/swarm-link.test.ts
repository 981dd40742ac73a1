// The swarm's kept-alive connection (lab/swarm-link.ts) against a real server on loopback that
// answers each request as the test says: calls share one connection, a connection the server closed
// is replaced, and what the server said in an error reaches the caller.
import { createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SwarmLink } from '../src/lab/swarm-link.ts';

interface Request {
  line: string;
  headers: string;
  body: string;
  /** Which connection it came on (0, 1, …). */
  conn: number;
}
let handle: (s: Socket, r: Request) => void;
const seen: Request[] = [];
let server: Server;
let url: string;
let conns = 0;

const json = (s: Socket, status: number, v: unknown) => {
  const body = JSON.stringify(v);
  s.write(`HTTP/1.1 ${status} X\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n${body}`);
};

beforeAll(async () => {
  server = createServer((s) => {
    const conn = conns++;
    let text = '';
    s.on('data', (d) => {
      text += d.toString('latin1');
      for (;;) {
        const end = text.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = text.slice(0, end);
        const length = Number(/content-length: (\d+)/i.exec(head)?.[1] ?? 0);
        if (text.length < end + 4 + length) return;
        const [line, ...headers] = head.split('\r\n');
        const r = { line, headers: headers.join('\n'), body: text.slice(end + 4, end + 4 + length), conn };
        text = text.slice(end + 4 + length);
        seen.push(r);
        handle(s, r);
      }
    });
    s.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});
afterAll(() => new Promise((r) => server.close(r)));

describe('the swarm link', () => {
  it('sends the token and the JSON body, and makes every call on one kept-alive connection', async () => {
    seen.length = 0;
    handle = (s, r) => json(s, 200, { echo: r.body ? JSON.parse(r.body) : r.line });
    const link = new SwarmLink(url, 'tok-1');
    expect(await link.json('GET', 'agent/v1/assignments?wait=20')).toEqual({
      echo: 'GET /agent/v1/assignments?wait=20 HTTP/1.1',
    });
    expect(await link.json('POST', 'agent/v1/reports', { state: 'installed' })).toEqual({
      echo: { state: 'installed' },
    });
    const bytes: Buffer[] = [];
    handle = (s) => s.write('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n');
    await link.get('content/sha256:x', (b) => void bytes.push(Buffer.from(b)));
    expect(Buffer.concat(bytes).toString()).toBe('abcde');
    expect(seen.map((r) => r.conn)).toEqual([seen[0].conn, seen[0].conn, seen[0].conn]);
    expect(seen[1].headers).toMatch(/authorization: Bearer tok-1/);
    expect(seen[1].headers).toMatch(/content-type: application\/json/);
    link.close();
  });

  it('sends a call again on a new connection when the server closed the kept-alive one unanswered', async () => {
    seen.length = 0;
    let calls = 0;
    // The second request on the first connection is met by a close, as when a keep-alive times out.
    handle = (s) => (calls++ === 1 ? s.destroy() : json(s, 200, { n: calls }));
    const link = new SwarmLink(url, 'tok-2');
    expect(await link.json('GET', 'a')).toEqual({ n: 1 });
    expect(await link.json('GET', 'b')).toEqual({ n: 3 });
    expect(seen.map((r) => r.line.split(' ')[1])).toEqual(['/a', '/b', '/b']);
    expect(seen[2].conn).not.toBe(seen[0].conn);
    link.close();
  });

  it('does not send again when a new connection is closed unanswered, nor after a part of the answer', async () => {
    seen.length = 0;
    handle = (s) => s.destroy();
    const link = new SwarmLink(url, 'tok-3');
    await expect(link.json('GET', 'a')).rejects.toThrow(/closed the connection without an answer/);
    handle = (s) => s.end('HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n{"a"');
    await expect(link.json('GET', 'b')).rejects.toThrow(/ended the download with/);
    expect(seen.map((r) => r.line.split(' ')[1])).toEqual(['/a', '/b']);
    link.close();
  });

  it("gives the server's message for an error answer, and refuses a malformed one", async () => {
    handle = (s) => json(s, 403, { error: 'FANOUT_ERR_AUTH_FORBIDDEN', message: 'an assignment for relay-s-pos-9' });
    const link = new SwarmLink(url, 'tok-4');
    await expect(link.json('POST', 'agent/v1/reports', {})).rejects.toMatchObject({
      status: 403,
      message: expect.stringMatching(/an assignment for relay-s-pos-9/),
    });
    handle = (s) => s.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\n{}');
    await expect(link.json('GET', 'x')).rejects.toThrow(/neither by one content-length nor in chunks.*refused/);
    // An endless answer is cut off, not gathered.
    handle = (s) => {
      s.write('HTTP/1.1 200 OK\r\ncontent-length: 9000000\r\n\r\n');
      s.write(Buffer.alloc(5 * 1024 * 1024, 32));
    };
    await expect(link.json('GET', 'endless')).rejects.toThrow(/a JSON answer over 4 MiB; refused/);
    link.close();
  });

  it('ends a waiting call when closed, and makes no call after', async () => {
    seen.length = 0;
    handle = () => undefined; // a long-poll that never answers
    const link = new SwarmLink(url, 'tok-5');
    const waiting = link.json('GET', 'agent/v1/assignments?wait=20');
    await new Promise((r) => setTimeout(r, 50));
    link.close();
    await expect(waiting).rejects.toThrow();
    await expect(link.json('GET', 'again')).rejects.toThrow(/the endpoint stopped/);
    expect(seen).toHaveLength(1);
  });

  it('fails a call the server stays silent on', async () => {
    handle = () => undefined;
    const link = new SwarmLink(url, 'tok-6');
    await expect(link.json('GET', 'slow', undefined, { silenceMs: 100 })).rejects.toThrow(/sent nothing for 0.1 s/);
    link.close();
  });
});
