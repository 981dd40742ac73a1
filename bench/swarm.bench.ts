// One relay under N simulated endpoints (`fanout swarm`, DESIGN §16): how soon each holds its
// assignment (p50/p99 from the command's issue) and the relay's memory, beside an idle node's.
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Network, runFanout, startNetwork, waitFor, writeEndpointTokens, writePackage } from '../test/helpers.ts';
import { rssMb, stopAndRemove } from './baselines.ts';
import { record } from './record.ts';

const N = Number(process.env.SWARM_COUNT ?? 2000);
/** Finished jobs of the same size put in the relay's history for the start-up figure. */
const HISTORY = Number(process.env.SWARM_HISTORY ?? 20);

export async function swarmBench() {
  const idle = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  const net = await startNetwork({ name: 'bench-swarm', relays: ['relay-s'], agentsPerRelay: N, startAgents: false });
  try {
    const dir = writePackage(join(net.dir, 'pkgs', 'p'), 'p', '1.0.0', { 'p.txt': 'p\n'.repeat(10_000) });
    await runFanout(['package', 'build', dir, '-o', `${dir}.tgz`]);
    await runFanout(['package', 'push', `${dir}.tgz`], { env: net.env });
    const tokens = writeEndpointTokens(net, join(net.dir, 'tokens.txt'));
    const swarm = runFanout(
      ['swarm', '--relay', net.relays['relay-s'].url, '--tokens', tokens, '--exit-after-idle', '5', '--json'],
      { env: net.env, timeoutMs: 600_000 },
    );
    await new Promise((r) => setTimeout(r, Math.max(3000, N)));
    let peak = 0;
    const sampler = setInterval(() => (peak = Math.max(peak, rssMb(net.relays['relay-s'].child.pid!))), 200);
    const { jobId } = (await net.admin.post('api/v1/jobs', { packages: ['p@1.0.0'], labels: { role: 'pos' } })) as {
      jobId: string;
    };
    const out = JSON.parse((await swarm).stdout);
    clearInterval(sampler);
    // The master must hear of every install too (the relay's reports, in parts of a size it takes).
    const wait = await runFanout(['job', 'wait', jobId, '--timeout', '120', '--json'], {
      env: net.env,
      timeoutMs: 130_000,
    });
    const atMaster = JSON.parse(wait.stdout || '{}') as { state?: string };
    const base = rssMb(idle.pid!);
    const at = `${out.endpoints} swarm endpoints on one relay`;
    record({
      name: `assignment p99, ${at}`,
      value: out.p99Ms,
      unit: 'ms',
      goal: N >= 10_000 ? '< 2000 ms' : '< 2000 ms (goal stated at 10,000)',
      met: out.p99Ms < 2000 && atMaster.state === 'complete',
      note: `p50 ${out.p50Ms} ms; ${out.installed} installed, ${out.failed} failed${out.failed ? `: ${JSON.stringify(out.failures)}` : ''}; the job at the master: ${atMaster.state ?? wait.stderr.trim()}`,
    });
    record({
      name: `relay peak memory, ${at}`,
      value: peak,
      unit: 'MB RSS',
      baseline: { name: 'idle node', value: base },
      ratio: peak / base,
      goal: '< 300 MB',
      met: peak < 300,
    });
    await historyFigures(net, jobId, out.endpoints);
    return { ...out, relayPeakRssMb: peak };
  } finally {
    idle.kill();
    await stopAndRemove(net);
  }
}

/**
 * A relay's start with HISTORY more finished jobs like this one in its job log, against its start
 * with this one alone: start-up and memory must not grow with the jobs it has ever run. The copies
 * are acknowledged by the master as the original was (their summary files say so).
 */
async function historyFigures(net: Network, jobId: string, endpoints: number) {
  const jobs = join(net.relays['relay-s'].data, 'jobs');
  const summary = join(jobs, `${jobId}.summary.json`);
  await waitFor('the master to acknowledge the whole job', async () => existsSync(summary), 60_000);
  const start = async () => {
    await net.relays['relay-s'].stop();
    const t0 = performance.now();
    const relay = await net.startRelay('relay-s');
    const ms = performance.now() - t0;
    const job = await net.admin.get<{ state: string }>(`api/v1/jobs/${jobId}?view=summary`);
    return { ms, rss: rssMb(relay.child.pid!), state: job.state };
  };
  const one = await start();
  const file = JSON.parse(readFileSync(summary, 'utf8'));
  for (let i = 1; i <= HISTORY; i++) {
    const copy = `${jobId}-h${i}`;
    copyFileSync(join(jobs, `${jobId}.jsonl`), join(jobs, `${copy}.jsonl`));
    writeFileSync(
      join(jobs, `${copy}.summary.json`),
      JSON.stringify({ ...file, summary: { ...file.summary, jobId: copy } }),
    );
  }
  const many = await start();
  const what = `relay start with ${HISTORY + 1} finished ${endpoints}-endpoint jobs in its job log`;
  record({
    name: `${what}: time`,
    value: many.ms,
    unit: 'ms',
    baseline: { name: 'the same start with 1 job', value: one.ms },
    ratio: many.ms / one.ms,
    goal: '≤ 1.5× (flat)',
    met: many.ms / one.ms <= 1.5,
  });
  record({
    name: `${what}: memory`,
    value: many.rss,
    unit: 'MB RSS',
    baseline: { name: 'the same start with 1 job', value: one.rss },
    ratio: many.rss / one.rss,
    goal: '≤ 1.2× (flat)',
    met: many.rss / one.rss <= 1.2 && many.state === 'complete',
    note: `the job at the master after the restart: ${many.state}`,
  });
}

if (import.meta.url === `file://${process.argv[1]}`) await swarmBench();
