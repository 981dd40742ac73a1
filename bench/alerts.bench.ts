// Durable alert intake over keep-alive HTTP: alerts/s for batch × clients = 1×8 and 100×8.
// Each answer means the alerts are committed (SQLite WAL, synchronous=FULL). Figures are printed
// with their ratio to the 1×8 run of the same process, so machines of any speed compare.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Pool } from 'undici';
import { inventoryYaml, runFanout, startFanout, tempDir } from '../test/helpers.ts';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 4);
const dir = tempDir('bench');
const master = await startFanout(['master', '--data', join(dir, 'master'), '--listen', '127.0.0.1:0'], {
  logDir: join(dir, 'logs'),
  name: 'master',
  env: { FANOUT_LOG_LEVEL: 'warn' },
});
const token = readFileSync(join(dir, 'master', 'admin.token'), 'utf8').trim();
writeFileSync(join(dir, 'inv.yaml'), inventoryYaml(['relay-a', 'relay-b'], 50));
const imp = await runFanout(['inventory', 'import', join(dir, 'inv.yaml')], {
  env: { FANOUT_MASTER: master.url, FANOUT_TOKEN: token },
});
if (imp.code !== 0) throw new Error(imp.stderr);

const pool = new Pool(master.url, { connections: 8, pipelining: 1, keepAliveTimeout: 30_000 });
let seq = 0;
const alert = () => ({
  alertId: `bench-${seq++}`,
  deviceId: `relay-${seq % 2 ? 'a' : 'b'}-pos-${(seq % 50) + 1}`,
  message: seq % 3 ? 'connect ECONNREFUSED 10.0.0.1:443' : 'ENOSPC: no space left on device',
  jobId: `j-bench-${seq % 20}`,
});

async function run(batch: number, clients: number) {
  let alerts = 0;
  let requests = 0;
  const until = Date.now() + SECONDS * 1000;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (Date.now() < until) {
        const body = JSON.stringify(Array.from({ length: batch }, alert));
        const res = await pool.request({
          path: '/api/v1/alerts',
          method: 'POST',
          body,
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        });
        const out = (await res.body.json()) as { accepted: number };
        if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}: ${JSON.stringify(out)}`);
        alerts += out.accepted;
        requests++;
      }
    }),
  );
  const secs = (performance.now() - started) / 1000;
  return {
    batch,
    clients,
    alerts,
    requests,
    secs,
    perSec: alerts / secs,
    latencyMs: (secs * 1000 * clients) / requests,
  };
}

try {
  await run(1, 8); // warm-up: connections, JIT, page cache
  const base = await run(1, 8);
  const batched = await run(100, 8);
  const line = (r: typeof base) =>
    `${String(r.batch).padStart(3)}×${r.clients}  ${r.perSec.toFixed(0).padStart(7)} durable alerts/s  (${r.alerts} alerts in ${r.requests} requests, ${r.secs.toFixed(1)} s, ${r.latencyMs.toFixed(1)} ms per request)  ratio to 1×8: ${(r.perSec / base.perSec).toFixed(2)}`;
  console.log(`alert intake over keep-alive HTTP, ${SECONDS} s each, SQLite (WAL, synchronous=FULL)`);
  console.log(line(base));
  console.log(line(batched));
} finally {
  await pool.close();
  await master.stop();
}
