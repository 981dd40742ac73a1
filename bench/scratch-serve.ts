import { exec } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { Registry } from 'prom-client';
import { sendBlob } from '../src/common/content.ts';
import { createLogger } from '../src/common/log.ts';
import { createHttpServer } from '../src/common/server.ts';
import { startNginx } from './baselines.ts';

const run = promisify(exec);
const mem = readFileSync('/tmp/serve/blob');
const SLICE = Number(process.env.SLICE ?? 1024) * 1024;
const app = createHttpServer({ logger: createLogger('s'), registry: new Registry() });
app.get('/blob', (req, reply) => sendBlob(req, reply, '/tmp/serve/blob'));
app.get('/mem', async (req, reply) => {
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, { 'content-length': String(mem.length), 'content-type': 'application/octet-stream' });
  for (let at = 0; at < mem.length; at += SLICE) {
    if (!res.write(mem.subarray(at, at + SLICE))) await new Promise((r) => res.once('drain', r));
  }
  res.end();
});
const url = await app.listen({ host: '127.0.0.1', port: 0 });
const fan = async (u: string) => {
  const t = Date.now();
  await run(`seq 100 | xargs -P 10 -I{} curl -sf -o /dev/null ${u}`);
  return (Date.now() - t) / 1000;
};
const ng = await startNginx('/tmp/serve/ng', '/tmp/serve');
for (let i = 0; i < 3; i++) {
  for (const path of ['blob', 'mem']) {
    const c0 = process.cpuUsage();
    const ours = await fan(`${url}/${path}`);
    const c = process.cpuUsage(c0);
    const theirs = await fan(`${ng!.url}/blob`);
    console.log(
      `${path} ${ours.toFixed(2)} s (cpu ${((c.user + c.system) / 1e6).toFixed(2)} s, sys ${(c.system / 1e6).toFixed(2)}) nginx ${theirs.toFixed(2)} s ratio ${(ours / theirs).toFixed(2)}`,
    );
  }
}
ng?.stop();
await app.close();
