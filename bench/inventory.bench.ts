// Inventory import at 1k, 10k and 100k devices through the CLI (`--tokens FILE`): time, growth from
// one size to the next (linear is 10×), the master's slowest /healthz answer during the import, and
// its memory after. Then 10k and 100k again on PostgreSQL, what several masters share.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { inventoryYaml, runFanout, startFanout, tempDir } from '../test/helpers.ts';
import { pgDatabase } from '../test/pg.ts';
import { rssMb } from './baselines.ts';
import { record } from './record.ts';

async function importOnce(relays: number, db?: string) {
  const dir = tempDir('bench-inv');
  const args = ['master', '--data', join(dir, 'master'), '--listen', '127.0.0.1:0', ...(db ? ['--db', db] : [])];
  const master = await startFanout(args, {
    logDir: join(dir, 'logs'),
    name: 'master',
    env: { FANOUT_LOG_LEVEL: 'warn' },
  });
  try {
    writeFileSync(
      join(dir, 'fleet.yaml'),
      inventoryYaml(
        Array.from({ length: relays }, (_, i) => `relay-${i}`),
        999,
      ),
    );
    let worst = 0;
    let probing = true;
    const probe = (async () => {
      while (probing) {
        const t = performance.now();
        await fetch(`${master.url}/healthz`);
        worst = Math.max(worst, performance.now() - t);
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    const t = performance.now();
    const r = await runFanout(['inventory', 'import', join(dir, 'fleet.yaml'), '--tokens', join(dir, 'tokens.txt')], {
      env: { FANOUT_MASTER: master.url, FANOUT_TOKEN_FILE: join(dir, 'master', 'admin.token') },
      timeoutMs: 900_000,
    });
    const secs = (performance.now() - t) / 1000;
    probing = false;
    await probe;
    if (r.code !== 0) throw new Error(r.stderr);
    return { devices: relays * 1000, secs, worstHealthzMs: worst, rssMb: rssMb(master.child.pid!) };
  } finally {
    await master.stop();
  }
}

export async function inventoryBench() {
  const runs = [];
  for (const relays of [1, 10, 100]) runs.push(await importOnce(relays));
  const [k1, k10, k100] = runs;
  for (const r of runs)
    console.log(
      `inventory import ${r.devices} devices: ${r.secs.toFixed(2)} s, slowest /healthz ${r.worstHealthzMs.toFixed(0)} ms, master RSS ${r.rssMb.toFixed(0)} MB`,
    );
  record({
    name: 'inventory import of 100,000 devices (CLI, tokens to a file)',
    value: k100.secs,
    unit: 's',
    goal: '< 10 s',
    met: k100.secs < 10,
  });
  record({
    name: 'inventory import growth 10k → 100k',
    value: k100.secs / k10.secs,
    unit: '×',
    baseline: { name: 'linear', value: 10 },
    ratio: k100.secs / k10.secs / 10,
    goal: 'linear (≤ 1.2× linear)',
    met: k100.secs / k10.secs <= 12,
    note: `1k ${k1.secs.toFixed(2)} s, 10k ${k10.secs.toFixed(2)} s, 100k ${k100.secs.toFixed(2)} s`,
  });
  record({
    name: 'slowest /healthz answer during the 100k import',
    value: k100.worstHealthzMs,
    unit: 'ms',
    goal: 'responsive (< 1000 ms)',
    met: k100.worstHealthzMs < 1000,
  });
  record({
    name: 'master RSS after importing 100k devices',
    value: k100.rssMb,
    unit: 'MB',
    goal: '< 500 MB',
    met: k100.rssMb < 500,
  });
  const onPg = [];
  for (const relays of [10, 100]) {
    // A fresh database each time, as each SQLite run starts from an empty folder.
    const db = await pgDatabase().catch(() => undefined);
    if (!db) break; // no PostgreSQL on this machine
    try {
      onPg.push(await importOnce(relays, db.url));
    } finally {
      await db.drop();
    }
  }
  if (onPg.length < 2) return runs;
  const [p10, p100] = onPg;
  for (const r of onPg)
    console.log(
      `inventory import ${r.devices} devices on PostgreSQL: ${r.secs.toFixed(2)} s, slowest /healthz ${r.worstHealthzMs.toFixed(0)} ms, master RSS ${r.rssMb.toFixed(0)} MB`,
    );
  record({
    name: 'inventory import of 100,000 devices on PostgreSQL',
    value: p100.secs,
    unit: 's',
    baseline: { name: 'the same on SQLite', value: k100.secs },
    ratio: p100.secs / k100.secs,
    goal: '< 10 s',
    met: p100.secs < 10,
    note: `10k ${p10.secs.toFixed(2)} s (growth ${(p100.secs / p10.secs).toFixed(1)}×), slowest /healthz ${p100.worstHealthzMs.toFixed(0)} ms`,
  });
  return runs;
}

if (import.meta.url === `file://${process.argv[1]}`) await inventoryBench();
