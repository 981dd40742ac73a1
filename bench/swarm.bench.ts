// One relay under N simulated endpoints (`fanout swarm`, DESIGN §16): how soon each holds its
// assignment (p50/p99 from the command's issue) and the relay's memory, beside an idle node's.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { runFanout, startNetwork, writeEndpointTokens, writePackage } from '../test/helpers.ts';
import { rssMb, stopAndRemove } from './baselines.ts';
import { record } from './record.ts';

const N = Number(process.env.SWARM_COUNT ?? 2000);

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
    return { ...out, relayPeakRssMb: peak };
  } finally {
    idle.kill();
    await stopAndRemove(net);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await swarmBench();
