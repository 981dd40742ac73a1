// Start-up and idle memory, each as a ratio to a bare Node.js in the same run:
// `fanout --help` vs `node -e 0` (median wall time of N runs), and an idle agent's RSS vs an idle `node`.
import { spawn, spawnSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { BIN, startNetwork } from '../test/helpers.ts';
import { rssMb, stopAndRemove } from './baselines.ts';
import { record } from './record.ts';

const RUNS = Number(process.env.BENCH_RUNS ?? 15);

function medianMs(args: string[]) {
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t = performance.now();
    const r = spawnSync(process.execPath, args, { stdio: 'ignore' });
    if (r.status !== 0) throw new Error(`${args.join(' ')} exited ${r.status}`);
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

export async function startupBench() {
  medianMs(['-e', '0']); // warm the page cache
  const bare = medianMs(['-e', '0']);
  const help = medianMs([BIN, '--help']);
  record({
    name: 'CLI start-up (fanout --help)',
    value: help,
    unit: 'ms',
    baseline: { name: 'node -e 0', value: bare },
    ratio: help / bare,
    goal: '≤ 3× node',
    met: help / bare <= 3,
    note: `median of ${RUNS}`,
  });

  const idle = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  const net = await startNetwork({ name: 'bench-idle', relays: ['relay-a'], agentsPerRelay: 1 });
  try {
    await sleep(5000); // enrolled, long-polling, nothing to do
    const agent = rssMb(net.agents['relay-a-pos-1'].child.pid!);
    const base = rssMb(idle.pid!);
    record({
      name: 'idle agent memory (enrolled, long-polling)',
      value: agent,
      unit: 'MB RSS',
      baseline: { name: 'idle node', value: base },
      ratio: agent / base,
      goal: '< 60 MB',
      met: agent < 60,
    });
    return { helpMs: help, bareMs: bare, startupRatio: help / bare, agentRssMb: agent, nodeRssMb: base };
  } finally {
    idle.kill();
    await stopAndRemove(net);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await startupBench();
