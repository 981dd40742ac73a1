// A failed job's target that moved on to a newer version through another relay (its fallback) is left
// out of the failed relay's plan: the master's fleet record says so, where the relay's job log cannot.
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Client } from '../src/protocol/client.ts';
import { inventoryYaml, type Network, runFanout, startNetwork, waitFor, writePackage } from './helpers.ts';

let net: Network;
const AGENT = 'relay-a-pos-1';

const cli = async (args: string[]) => {
  const r = await runFanout([...args, '--json'], { env: net.env });
  expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
  return JSON.parse(r.stdout);
};
const push = async (version: string, exitCode: number) => {
  const dir = writePackage(
    join(net.dir, 'pkgs', `mover-${version}`),
    'mover',
    version,
    { 'v.txt': version },
    `#!/bin/sh\nexit ${exitCode}\n`,
  );
  await runFanout(['package', 'build', dir, '-o', `${dir}.tgz`]);
  await cli(['package', 'push', `${dir}.tgz`]);
};
const job = async (version: string, ends: string) => {
  const { jobId } = await cli(['job', 'create', '--package', `mover@${version}`, '--target', AGENT]);
  await waitFor(`job ${jobId} ${ends}`, async () => (await cli(['job', 'status', jobId])).state === ends, 60_000, 250);
  return jobId;
};

beforeAll(async () => {
  net = await startNetwork({
    name: 'fleet-moved-on',
    relays: ['relay-a', 'relay-b'],
    agentsPerRelay: 1,
    startAgents: false,
  });
  const inv = inventoryYaml(['relay-a', 'relay-b'], 1).replace(
    `  - id: ${AGENT}\n    kind: endpoint\n    location: LOC-0\n    relay: relay-a\n`,
    `  - id: ${AGENT}\n    kind: endpoint\n    location: LOC-0\n    relay: relay-a\n    fallbackRelays: [relay-b]\n`,
  );
  expect(inv).toContain('fallbackRelays: [relay-b]');
  writeFileSync(join(net.dir, 'inventory-2.yaml'), inv);
  await cli(['inventory', 'import', join(net.dir, 'inventory-2.yaml')]);
  const a = net.relays['relay-a'];
  await a.stop();
  await net.startRelay('relay-a', ['--listen', new URL(a.url).host]);
  await net.startAgent(AGENT, 'relay-a', {}, ['--failover-after', '2s']);
  await push('1.0.0', 3);
  await push('1.1.0', 0);
}, 120_000);
afterAll(async () => {
  await net?.stopAll();
});

it('a plan leaves out a target that installed a newer version through its fallback relay, as the master records', async () => {
  const failed = await job('1.0.0', 'failed');
  // relay-a dies; the endpoint turns to relay-b, through which the newer version installs.
  const a = net.relays['relay-a'];
  await a.kill();
  await job('1.1.0', 'complete');
  await net.startRelay('relay-a', ['--listen', new URL(a.url).host]);

  // relay-a's own job log knows nothing of relay-b's job: before, its plan sent mover@1.0.0 to an
  // endpoint that refuses it (DOWNGRADE_REFUSED).
  // Through the relay from anywhere, and on its host while it runs: the same answer.
  const token = join(a.data, 'admin.token');
  for (const where of [
    ['--relay', a.url, '--token-file', token],
    ['--data', a.data],
  ]) {
    const dry = await runFanout(['redistribute', ...where, '--job', failed, '--dry-run']);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toContain(
      `job ${failed}: every target not installed has moved on to a newer version (${AGENT}: the master's fleet record has mover@1.1.0 there since`,
    );
  }

  // On its host while it is down: the master is asked as the relay would (its address, CA and token
  // are in relay.json and master.token). Before, the log alone planned mover@1.0.0 for the endpoint.
  await net.relays['relay-a'].stop();
  const down = await runFanout(['redistribute', '--data', a.data, '--job', failed, '--dry-run']);
  expect(down.code, down.stderr).toBe(0);
  expect(down.stdout).toContain(
    `the relay is not running: planning from its job log and from what its master at ${net.master.url} knows`,
  );
  expect(down.stdout).toContain(
    `job ${failed}: every target not installed has moved on to a newer version (${AGENT}: the master's fleet record has mover@1.1.0 there since`,
  );
  expect(statSync(join(a.data, 'master.token')).mode & 0o777).toBe(0o600);
  await net.startRelay('relay-a', ['--listen', new URL(a.url).host]);

  // The master agrees with relay-a's word that nothing is needed: resolving the ticket settles the failure.
  const record = await waitFor('the failed distribution ticketed', async () =>
    (await cli(['failed', 'list'])).find((f: any) => f.jobId === failed && f.ticketId),
  );
  await cli(['ticket', 'resolve', record.ticketId]);
  const after = (await cli(['failed', 'list'])).find((f: any) => f.jobId === failed);
  expect(after.state).toBe('resolved');
  expect((await cli(['plans', 'list'])).filter((p: any) => p.jobId === failed)).toEqual([]);

  // A relay hears only of its own targets; other principals are refused.
  const asB = new Client({ baseUrl: net.master.url, token: net.tokens['relay-b'] });
  expect(await asB.get(`api/v1/relay/jobs/${failed}/moved-on`)).toEqual([]);
  const asA = new Client({ baseUrl: net.master.url, token: net.tokens['relay-a'] });
  expect(await asA.get(`api/v1/relay/jobs/${failed}/moved-on`)).toEqual([
    { deviceId: AGENT, why: expect.stringContaining('mover@1.1.0') },
  ]);
  const asEndpoint = await fetch(`${net.master.url}/api/v1/relay/jobs/${failed}/moved-on`, {
    headers: { authorization: `Bearer ${net.tokens[AGENT]}` },
  });
  expect(asEndpoint.status).toBe(403);
  expect(readFileSync(join(net.dir, 'logs', `${AGENT}.log`), 'utf8')).not.toContain('DOWNGRADE_REFUSED');
}, 180_000);
