// `fanout swarm` (DESIGN §16): 200 simulated endpoints in one process on a real relay, speaking the
// agent protocol; the master sees every target installed, with the signed trees attested, after a
// key rotation during the run.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Network, runFanout, startNetwork, waitFor, writeEndpointTokens, writePackage } from './helpers.ts';

let net: Network;
const N = 200;

beforeAll(async () => {
  net = await startNetwork({ name: 'swarm', relays: ['relay-w'], agentsPerRelay: N, startAgents: false });
  const dir = writePackage(join(net.dir, 'pkgs', 'till'), 'till', '1.0.0', { 'till.txt': 'till\n'.repeat(1000) });
  await runFanout(['package', 'build', dir, '-o', `${dir}.tgz`]);
  expect((await runFanout(['package', 'push', `${dir}.tgz`], { env: net.env })).code).toBe(0);
}, 120_000);
afterAll(async () => {
  await net?.stopAll();
});

describe('swarm', () => {
  it(`puts ${N} endpoints on a relay and installs a job on all of them, signed by a key rotated during the run`, async () => {
    const tokens = writeEndpointTokens(net, join(net.dir, 'swarm-tokens.txt'));
    const swarm = runFanout(
      ['swarm', '--relay', net.relays['relay-w'].url, '--tokens', tokens, '--exit-after-idle', '3', '--json'],
      { env: net.env, timeoutMs: 120_000 },
    );
    await new Promise((r) => setTimeout(r, 2000)); // the long-polls are waiting
    // The swarm read the master's key at its start: the job is signed by the next one.
    expect((await runFanout(['key', 'rotate'], { env: net.env })).code).toBe(0);
    const { jobId } = await net.admin.post<{ jobId: string }>('api/v1/jobs', {
      packages: ['till@1.0.0'],
      labels: { role: 'pos' },
    });
    const r = await swarm;
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    console.log(
      `swarm: ${out.endpoints} endpoints, ${out.installed} installed, assignment p50 ${out.p50Ms} ms, p99 ${out.p99Ms} ms`,
    );
    expect(out).toMatchObject({ endpoints: N, installed: N, failed: 0 });
    const job = await waitFor('the job complete', async () => {
      const j = await net.admin.get(`api/v1/jobs/${jobId}?view=summary`);
      return j.state === 'complete' && j;
    });
    expect(job.counts).toEqual({ installed: N });
  }, 180_000);
});
