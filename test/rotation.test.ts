// `fanout key rotate` on a working fleet: the next job, signed by the new key, is delivered at once.
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client } from '../src/protocol/client.ts';
import { type Network, pushPackage, runFanout, startNetwork, waitFor } from './helpers.ts';

let net: Network;
let early: { jobId: string };
let failedBefore: { jobId: string };
const AGENT = 'relay-a-pos-1';

beforeAll(async () => {
  net = await startNetwork({ name: 'rotation', relays: ['relay-a', 'relay-b'], agentsPerRelay: 1, startAgents: false });
  await net.startAgent(AGENT, 'relay-a');
  // relay-b and its endpoint enroll only after the rotations (the last test), as new devices do.
  await net.relays['relay-b'].stop();
  rmSync(net.relays['relay-b'].data, { recursive: true, force: true });
  for (const v of ['1.0.0', '2.0.0', '3.0.0']) await pushPackage(net, 'app', v, { 'v.txt': `${v}\n` });
  // Signed now, by the first key; relay-b takes it only after the rotations, enrolled afresh.
  await pushPackage(net, 'early', '1.0.0', { 'e.txt': 'early\n' });
  early = await net.admin.post<{ jobId: string }>('api/v1/jobs', {
    packages: ['early@1.0.0'],
    targets: ['relay-b-pos-1'],
  });
  // A distribution that fails before the rotations, on relay-a, to be redistributed after them.
  await pushPackage(net, 'fix', '1.0.0', { 'f.txt': 'fix\n' });
  const agent = new Client({ baseUrl: net.agents[AGENT].url, token: net.tokens[AGENT] });
  await agent.post('admin/v1/faults', { 'agent.install': 'exit:3' });
  failedBefore = await net.admin.post<{ jobId: string }>('api/v1/jobs', {
    packages: ['fix@1.0.0'],
    targets: [AGENT],
    params: { maxAttempts: 1 },
  });
  await waitFor(
    'the fix job failed',
    async () => (await net.admin.get(`api/v1/jobs/${failedBefore.jobId}`)).state === 'failed',
  );
  await agent.json('DELETE', 'admin/v1/faults');
}, 120_000);
afterAll(async () => {
  await net?.stopAll();
});

const installed = async (pkg: string, target = AGENT) => {
  const { jobId } = await net.admin.post<{ jobId: string }>('api/v1/jobs', { packages: [pkg], targets: [target] });
  return waitFor(
    `${pkg} installed`,
    async () => {
      const j = await net.admin.get(`api/v1/jobs/${jobId}`);
      return (j.state === 'complete' || j.state === 'failed') && j;
    },
    60_000,
    250,
  );
};

describe('a key rotation', () => {
  it('the job right after it is delivered', async () => {
    expect((await installed('app@1.0.0')).state).toBe('complete');
    const r = await runFanout(['key', 'rotate', '--json'], { env: net.env });
    expect(r.code, r.stderr).toBe(0);
    const { fingerprint } = JSON.parse(r.stdout);
    const shown = await runFanout(['key', 'show', '--json'], { env: net.env });
    expect(JSON.parse(shown.stdout)).toEqual({ fingerprint, rotations: 1, latest: fingerprint });
    const t0 = Date.now();
    const job = await installed('app@2.0.0');
    console.log(
      `after the rotation: ${job.state} in ${((Date.now() - t0) / 1000).toFixed(1)} s`,
      JSON.stringify(job.targets),
    );
    expect(job.state).toBe('complete');
    expect(existsSync(join(net.agents[AGENT].root, 'app', '2.0.0', 'v.txt'))).toBe(true);
  }, 120_000);

  it('a relay that cannot read the new key at once holds the command until it can, and the job completes', async () => {
    const relay = net.relays['relay-a'];
    const relayAdmin = new Client({
      baseUrl: relay.url,
      token: readFileSync(join(relay.data, 'admin.token'), 'utf8').trim(),
    });
    expect((await runFanout(['key', 'rotate'], { env: net.env })).code).toBe(0);
    // The master answers the long-poll with the job, then cannot be asked for its key, once.
    await relayAdmin.post('admin/v1/faults', { 'relay.master.enroll': 'fail:1' });
    const job = await installed('app@3.0.0');
    // Before, the relay refused the command for good: every target failed SIGNATURE_INVALID.
    expect(job.state).toBe('complete');
    expect(await relayAdmin.get('admin/v1/faults')).toEqual({});
    expect(readFileSync(relay.logFile, 'utf8')).toMatch(/command signed by a key not known yet/);
  }, 60_000);

  it("the master's next signed request to a relay is taken", async () => {
    // The relay read its enrollment a moment ago (the job above): a second rotation is news to it.
    expect((await runFanout(['key', 'rotate'], { env: net.env })).code).toBe(0);
    // What the dashboard's "plan a redistribution" asks: the master signs its request to the relay.
    const r = await net.admin.post<{ plans: { jobId: string }[] }>('api/v1/relays/relay-a/plans', {});
    expect(r.plans.map((p) => p.jobId)).toEqual([failedBefore.jobId]); // the one failed job on relay-a
  }, 60_000);

  it('a relay and an endpoint that enroll after it install a package pushed before it', async () => {
    // Both pin the latest key: the package's own signature, made at its push, is by the first one.
    await net.startRelay('relay-b');
    await net.startAgent('relay-b-pos-1', 'relay-b');
    const job = await installed('app@1.0.0', 'relay-b-pos-1');
    // Before, the relay refused it: the signature does not verify with the master's key.
    expect(job.state, JSON.stringify(job.targets)).toBe('complete');
    expect(readFileSync(join(net.agents['relay-b-pos-1'].root, 'app', '1.0.0', 'v.txt'), 'utf8')).toBe('1.0.0\n');
  }, 60_000);

  it('a job made before it, waiting for a relay enrolled afresh since, completes', async () => {
    // The command waited for relay-b, signed by the first key; relay-b now trusts only the latest.
    const job = await waitFor(
      'the job made before the rotations ends',
      async () => {
        const j = await net.admin.get(`api/v1/jobs/${early.jobId}`);
        return (j.state === 'complete' || j.state === 'failed') && j;
      },
      60_000,
      250,
    );
    // Before, relay-b refused the command: every target failed SIGNATURE_INVALID.
    expect(job.state, JSON.stringify(job.targets)).toBe('complete');
    expect(readFileSync(join(net.agents['relay-b-pos-1'].root, 'early', '1.0.0', 'e.txt'), 'utf8')).toBe('early\n');
  }, 60_000);

  it('a distribution that failed before it is redistributed to an endpoint wiped and enrolled since', async () => {
    // The endpoint is reimaged: it enrolls afresh and trusts only the latest key. The relay's job log
    // holds the command, and the package in it, as the first key signed them.
    await net.agents[AGENT].stop();
    for (const d of [net.agents[AGENT].data, net.agents[AGENT].root]) rmSync(d, { recursive: true, force: true });
    await net.startAgent(AGENT, 'relay-a');
    const { plans } = await net.admin.post<{ plans: any[] }>('api/v1/relays/relay-a/plans', {
      jobId: failedBefore.jobId,
    });
    expect(plans.map((p: any) => p.distributionList)).toEqual([[AGENT]]);
    await net.admin.post(`api/v1/plans/${plans[0].planId}/approve`, { by: 'test' });
    let job: any;
    await waitFor(
      'the redistribution complete',
      async () => (job = await net.admin.get(`api/v1/jobs/${failedBefore.jobId}`)).state === 'complete',
      60_000,
      250,
    ).catch(() => undefined);
    // Before, the endpoint refused it: the command and the package were signed by a key it does not trust.
    expect(job.state, JSON.stringify(job.targets)).toBe('complete');
    expect(readFileSync(join(net.agents[AGENT].root, 'fix', '1.0.0', 'f.txt'), 'utf8')).toBe('fix\n');
  }, 90_000);

  it('an expired command is signed again for its redistribution only as the master signed it', async () => {
    const relayB = new Client({
      baseUrl: net.master.url,
      token: readFileSync(join(net.dir, 'tokens', 'relay-b.token'), 'utf8').trim(),
    });
    const db = new Database(join(net.dir, 'master', 'master.db'));
    const { command_id: id, body } = db
      .prepare('select command_id, body from commands where job_id = ?')
      .get(early.jobId) as { command_id: string; body: string };
    const renewed = await relayB.post<{ header: { commandId: string; params: object } }>(
      `api/v1/relay/commands/${id}/renew`,
    );
    expect(renewed.header).toMatchObject({ commandId: id, params: JSON.parse(body).params });
    // Another relay's command is not signed again for relay-b: renewals are asked for more often now.
    const { command_id: ofRelayA } = db
      .prepare('select command_id from commands where job_id = ?')
      .get(failedBefore.jobId) as { command_id: string };
    await expect(relayB.post(`api/v1/relay/commands/${ofRelayA}/renew`)).rejects.toThrow(
      /FANOUT_ERR_JOB_UNKNOWN|as a command of relay relay-b/,
    );
    // Someone with the database's password, not the key, gives the command a script to run.
    const changed = { ...JSON.parse(body), params: { ...JSON.parse(body).params, preCommand: 'touch /tmp/owned' } };
    db.prepare('update commands set body = ? where command_id = ?').run(JSON.stringify(changed), id);
    db.close();
    // Before, the master signed whatever the row said.
    await expect(relayB.post(`api/v1/relay/commands/${id}/renew`)).rejects.toThrow(
      /FANOUT_ERR_COMMAND_REFUSED|otherwise than it signed it/,
    );
  }, 60_000);

  it('a package row changed in the database is not signed again: refused, nothing installed', async () => {
    await pushPackage(net, 'tool', '1.0.0', { 'tool.txt': 'good\n' });
    await pushPackage(net, 'tool', '6.6.6', { 'tool.txt': 'evil\n' });
    // Someone with the database's password, not the key, points tool@1.0.0 at other content.
    const db = new Database(join(net.dir, 'master', 'master.db'));
    db.prepare(
      `update packages set (digest, size, tree) = (select digest, size, tree from packages where version = '6.6.6')
       where name = 'tool' and version = '1.0.0'`,
    ).run();
    db.close();
    const job = await installed('tool@1.0.0', 'relay-b-pos-1');
    expect(job.state).toBe('failed');
    expect(job.targets[0], JSON.stringify(job.targets)).toMatchObject({ failureType: 'SIGNATURE_INVALID' });
    expect(existsSync(join(net.agents['relay-b-pos-1'].root, 'tool'))).toBe(false);
  }, 60_000);
});
