// A relay an attacker controls, as its own process (`node --import tsx test/hostile-relay.ts`): it
// speaks the agent protocol to real agents and hands out whatever key and assignments it is told
// through /control (the test's side channel). Not a test file: test/hostile.test.ts drives it.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';

let publicKey = '';
const queue: unknown[] = [];
const reports: unknown[] = [];
let contentRequests = 0;
/** Content requests get an endless body: an attempt to fill the endpoint's disk. */
let flood = false;
/** Assignments stay listed whatever the agent reports (refused): a relay that neither holds nor forgets. */
let sticky = false;
/** Assignment requests get an endless JSON answer: an attempt to fill the endpoint's memory. */
let floodJson = false;
/** ...or an error whose message never ends. */
let floodError = false;
let assignmentRequests = 0;
/** Content served from a real archive: `cut` sends half of it and drops the connection the first
 * time, then sends it all again whatever the Range; `flip` sends it with its last byte changed. */
let serve: { file: string; mode: 'cut' | 'flip' } | undefined;
let served = 0;
const ranges: string[] = [];

const server = createServer((req, res) => {
  const send = (body: unknown, status = 200) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  const body = () =>
    new Promise<unknown>((resolve) => {
      let text = '';
      req.on('data', (c) => (text += c));
      req.on('end', () => resolve(text ? JSON.parse(text) : {}));
    });
  const url = req.url ?? '';
  if (url.startsWith('/control/key'))
    return void body().then((b) => ((publicKey = (b as { publicKey: string }).publicKey), send({ ok: true })));
  if (url.startsWith('/control/queue')) return void body().then((b) => (queue.push(b), send({ ok: true })));
  if (url.startsWith('/control/flood-json')) return ((floodJson = true), send({ ok: true }));
  if (url.startsWith('/control/flood-error')) return ((floodError = true), send({ ok: true }));
  if (url.startsWith('/control/calm'))
    return (
      (floodJson = false),
      (floodError = false),
      (flood = false),
      (serve = undefined),
      sticky && ((sticky = false), (queue.length = 0)),
      send({ ok: true })
    );
  if (url.startsWith('/control/sticky')) return ((sticky = true), send({ ok: true }));
  if (url.startsWith('/control/flood')) return ((flood = true), send({ ok: true }));
  if (url.startsWith('/control/serve'))
    return void body().then((b) => ((serve = b as typeof serve), (served = 0), send({ ok: true })));
  if (url.startsWith('/control/state')) return send({ reports, contentRequests, assignmentRequests, ranges });
  if (url.startsWith('/agent/v1/enroll')) return send({ relayId: 'relay-a', publicKey });
  if (url.startsWith('/agent/v1/assignments')) assignmentRequests++;
  if (url.startsWith('/agent/v1/assignments') && (floodJson || floodError)) {
    res.writeHead(floodError ? 500 : 200, { 'content-type': 'application/json' });
    res.write(floodError ? '{"error":{"code":"X","message":"' : '{"assignments":[');
    const chunk = Buffer.from(`${'{"pad":"'.padEnd(64 * 1024 - 3, 'x')}"},`);
    const more = () => {
      while (!res.destroyed && res.write(chunk));
      if (!res.destroyed) res.once('drain', more);
    };
    return more();
  }
  if (url.startsWith('/agent/v1/assignments')) {
    // Like a real relay, an assignment is listed until its endpoint reports it ended.
    if (queue.length) return send({ assignments: queue });
    return void setTimeout(() => send({ assignments: [] }), 300);
  }
  if (url.startsWith('/agent/v1/reports'))
    return void body().then((b) => {
      const r = b as { jobId: string; commandId: string; state: string };
      reports.push(r);
      if (sticky) return void res.writeHead(403, { 'content-type': 'application/json' }).end('{"error":{}}');
      if (r.state === 'installed' || r.state === 'failed') {
        const i = queue.findIndex(
          (a) => (a as typeof r).jobId === r.jobId && (a as typeof r).commandId === r.commandId,
        );
        if (i >= 0) queue.splice(i, 1);
      }
      send({ ok: true });
    });
  if (url.startsWith('/content/')) contentRequests++;
  if (url.startsWith('/content/') && flood) {
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    const chunk = Buffer.alloc(64 * 1024, 7);
    const more = () => {
      while (!res.destroyed && res.write(chunk));
      if (!res.destroyed) res.once('drain', more);
    };
    return more();
  }
  if (url.startsWith('/content/') && serve) {
    ranges.push(String(req.headers.range ?? ''));
    const bytes = Buffer.from(readFileSync(serve.file));
    if (serve.mode === 'flip') bytes[bytes.length - 1] ^= 1;
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': bytes.length });
    if (serve.mode === 'cut' && served++ === 0) {
      res.write(bytes.subarray(0, bytes.length >> 1));
      return void setTimeout(() => res.destroy(), 100);
    }
    return void res.end(bytes);
  }
  send({ error: { code: 'X', message: 'no' } }, 404);
});
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`listening on http://127.0.0.1:${(server.address() as { port: number }).port}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
