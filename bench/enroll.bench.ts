// Relays asking the master for their devices (their enrollment: every 10 s, and all at once after an
// inventory import) as the fleet grows: 100 and 1,000 relays of 100 endpoints each (10,100 and
// 101,000 devices). One relay's answer should not grow with the fleet (flat), and a thousand relays
// asking at once should be answered in seconds. Then what the 1,000 relays' heartbeats cost the
// master (heartbeats.ts).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { inventoryYaml, runFanout, startFanout, tempDir } from '../test/helpers.ts';
import { heartbeatCost } from './heartbeats.ts';
import { record } from './record.ts';

const ENDPOINTS = 100;

async function fleetOf(relays: number) {
  const dir = tempDir('bench-enroll');
  // Relays that stop heartbeating between the bench's turns are not the figure: no RELAY_DOWN.
  mkdirSync(join(dir, 'master'), { recursive: true });
  writeFileSync(join(dir, 'master', 'fanout.yaml'), 'alerts:\n  heartbeatTimeout: 1h\n');
  const master = await startFanout(['master', '--data', join(dir, 'master'), '--listen', '127.0.0.1:0'], {
    logDir: join(dir, 'logs'),
    name: 'master',
    env: { FANOUT_LOG_LEVEL: 'warn' },
  });
  try {
    const ids = Array.from({ length: relays }, (_, i) => `site-${i}`);
    writeFileSync(join(dir, 'fleet.yaml'), inventoryYaml(ids, ENDPOINTS));
    const r = await runFanout(['inventory', 'import', join(dir, 'fleet.yaml'), '--tokens', join(dir, 'tokens.txt')], {
      env: { FANOUT_MASTER: master.url, FANOUT_TOKEN_FILE: join(dir, 'master', 'admin.token') },
      timeoutMs: 900_000,
    });
    if (r.code !== 0) throw new Error(r.stderr);
    const token = new Map(
      readFileSync(join(dir, 'tokens.txt'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => l.split(' ') as [string, string]),
    );
    const enroll = async (id: string) => {
      const res = await fetch(`${master.url}/api/v1/relay/enroll`, {
        headers: { authorization: `Bearer ${token.get(id)}` },
      });
      const body = (await res.json()) as { devices: unknown[] };
      if (res.status !== 200 || body.devices.length !== ENDPOINTS) throw new Error(`enroll ${id}: ${res.status}`);
    };
    // All at once, as after an import: the first answers read the fleet, the rest share it.
    const t = performance.now();
    await Promise.all(ids.map(enroll));
    const allMs = performance.now() - t;
    const one: number[] = [];
    for (let i = 0; i < 60; i++) {
      const s = performance.now();
      await enroll(ids[(i * 37) % relays]);
      one.push(performance.now() - s);
    }
    one.sort((a, b) => a - b);
    const heartbeats = relays >= 1000 ? await heartbeatCost(master.url, master.child.pid!, ids, token) : undefined;
    return { devices: relays * (ENDPOINTS + 1), allMs, oneMs: one[30], heartbeats };
  } finally {
    await master.stop();
  }
}

export async function enrollBench() {
  const small = await fleetOf(100);
  const large = await fleetOf(1000);
  for (const f of [small, large])
    console.log(
      `${f.devices} devices: one relay's enrollment ${f.oneMs.toFixed(1)} ms (median), all relays at once ${f.allMs.toFixed(0)} ms`,
    );
  record({
    name: "one relay's enrollment at 101,000 devices (1,000 relays)",
    value: large.oneMs,
    unit: 'ms',
    baseline: { name: 'the same at 10,100 devices (100 relays)', value: small.oneMs },
    ratio: large.oneMs / small.oneMs,
    goal: 'flat (≤ 1.5×)',
    met: large.oneMs / small.oneMs <= 1.5,
  });
  const hb = large.heartbeats!;
  console.log(`heartbeat / read, master CPU µs each, in turns: ${hb.pairs.join(', ')}`);
  record({
    name: 'a heartbeat at 1,000 relays, each every 5 s (master CPU)',
    value: hb.heartbeatUs,
    unit: 'µs',
    baseline: { name: "a relay's smallest read (GET /api/v1/relay/failed), same pace", value: hb.readUs },
    ratio: hb.heartbeatUs / hb.readUs,
    goal: '≤ 1.5× (its write shared)',
    met: hb.heartbeatUs / hb.readUs <= 1.5,
  });
  record({
    name: '1,000 relays enrolling at once (after an inventory import)',
    value: large.allMs / 1000,
    unit: 's',
    baseline: { name: '100 relays at once', value: small.allMs / 1000 },
    ratio: large.allMs / small.allMs,
    goal: 'linear (≤ 12×) and < 10 s',
    met: large.allMs / small.allMs <= 12 && large.allMs < 10_000,
  });
}

if (import.meta.url === `file://${process.argv[1]}`) await enrollBench();
