// A redistribution plan's "bytes to send" against the bytes that then move (relay → endpoints, and
// master → relay), in three cases: endpoints that were off (the content is in the relay's depot); the
// same after the relay lost its depot copy (it comes from the master again); endpoints whose install
// script failed after they had verified the content (they hold it: nothing needs to move).
import { randomBytes } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { digestPath } from '../src/protocol/digest.ts';
import { type Network, runFanout, startNetwork, writePackage } from '../test/helpers.ts';
import { stopAndRemove } from './baselines.ts';
import { record } from './record.ts';

const MB = 20;
const OFF = ['relay-r-pos-2', 'relay-r-pos-5', 'relay-r-pos-7'];

async function counter(url: string, name: string) {
  const text = await (await fetch(`${url}/metrics`)).text();
  return [...text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\d+)`, 'gm'))].reduce((n, m) => n + Number(m[1]), 0);
}

async function cli(net: Network, args: string[], okCodes = [0]) {
  const r = await runFanout([...args, '--json'], { env: net.env, timeoutMs: 300_000 });
  if (!okCodes.includes(r.code ?? -1)) throw new Error(`fanout ${args.join(' ')}: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

/** A job that fails on three endpoints; `lose` runs before they come back. Then plan and approve. */
async function repair(
  net: Network,
  version: string,
  payload: Buffer,
  o: { fail: 'off' | 'install script'; lose?: (digest: string) => void },
) {
  const dir = writePackage(join(net.dir, 'pkgs', `red-${version}`), 'red', version, { 'red.txt': 'red\n' });
  writeFileSync(join(dir, 'payload.bin'), payload);
  await runFanout(['package', 'build', dir, '-o', `${dir}.tgz`]);
  const { digest } = await cli(net, ['package', 'push', `${dir}.tgz`]);
  for (const id of OFF) {
    await net.agents[id].stop();
    if (o.fail === 'install script') await net.startAgent(id, 'relay-r', { FANOUT_FAULTS: 'agent.install=exit:3' });
  }
  const job = ['job', 'create', '--package', `red@${version}`, '--label', 'role=pos', '--param', 'deadline=6s'];
  const { jobId } = await cli(net, job);
  await cli(net, ['job', 'wait', jobId, '--timeout', '120'], [1]);
  o.lose?.(digest);
  for (const id of OFF) {
    if (o.fail === 'install script') await net.agents[id].stop();
    await net.startAgent(id, 'relay-r');
  }
  const relay = net.relays['relay-r'];
  const tool = ['redistribute', '--relay', relay.url, '--token-file', join(relay.data, 'admin.token'), '--job', jobId];
  const [plan] = (await cli(net, [...tool, '--dry-run'])).plans;
  const before = {
    down: await counter(relay.url, 'fanout_relay_content_bytes_served_total'),
    up: await counter(net.master.url, 'fanout_blob_bytes_served_total'),
  };
  await cli(net, [...tool, '--yes']);
  const moved =
    (await counter(relay.url, 'fanout_relay_content_bytes_served_total')) -
    before.down +
    ((await counter(net.master.url, 'fanout_blob_bytes_served_total')) - before.up);
  return { estimate: plan.bytesToSend as number, moved, targets: plan.distributionList.length as number };
}

export async function redistributionBench() {
  const net = await startNetwork({ name: 'bench-redist', relays: ['relay-r'], agentsPerRelay: 8 });
  try {
    const payload = randomBytes(MB * 1024 * 1024);
    const depot = (digest: string) => digestPath(join(net.relays['relay-r'].data, 'depot'), digest)!;
    const cases = [
      {
        name: 'endpoints that were off, content in the depot',
        result: await repair(net, '1.0.0', payload, { fail: 'off' }),
      },
      {
        name: 'the same after the relay lost its depot copy',
        result: await repair(net, '1.0.1', payload, { fail: 'off', lose: (d) => rmSync(depot(d), { force: true }) }),
      },
      {
        name: 'install scripts that failed after the content was verified',
        result: await repair(net, '1.0.2', payload, { fail: 'install script' }),
      },
    ];
    for (const c of cases) {
      const { estimate, moved, targets } = c.result;
      record({
        name: `redistribution plan's bytes to send, ${c.name}`,
        value: estimate / 1e6,
        unit: 'MB',
        baseline: { name: 'bytes that moved', value: moved / 1e6 },
        ...(moved ? { ratio: estimate / moved } : {}),
        goal: 'within 5 %',
        // Nothing to move is within 5 % of a package, not of zero.
        met: Math.abs(estimate - moved) <= 0.05 * Math.max(moved, payload.length),
        note: `${targets} endpoint(s) to redo, a ${MB} MB package`,
      });
    }
  } finally {
    await stopAndRemove(net);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await redistributionBench();
