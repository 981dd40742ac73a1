// Rollouts in rings over 20 endpoints (DESIGN §13): an injected install failure rate halts the
// rollout after its ring, raises ROLLOUT_HALTED through the alert center, and the next ring waits
// until an operator resumes; an aborted rollout starts no further ring.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { chromium } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Client } from '../src/protocol/client.ts';
import { signCommand } from '../src/protocol/command.ts';
import { generateSigningKey } from '../src/protocol/crypto.ts';
import { type Network, pushPackage, runFanout, startNetwork, waitFor, writePackage } from './helpers.ts';

let net: Network;
const RELAYS = ['relay-n', 'relay-s'];

beforeAll(async () => {
  net = await startNetwork({ name: 'rings', relays: RELAYS, agentsPerRelay: 10 });
  for (const v of ['1.0.0', '2.0.0']) await pushPackage(net, 'app', v, { 'v.txt': `${v}\n` });
}, 120_000);
afterAll(async () => {
  await net?.stopAll();
});
// A test that fails half way leaves its endpoints' install faults behind: the next starts clean.
afterEach(async () => {
  for (const id of Object.keys(net?.agents ?? {})) await agentFaults(id).json('DELETE', 'admin/v1/faults');
});

const cli = async (args: string[], code = 0) => {
  const r = await runFanout([...args, '--json'], { env: net.env });
  expect(r.code, r.stderr).toBe(code);
  return JSON.parse(r.stdout);
};
const status = (id: string) => cli(['job', 'status', id]);
/** The rollout's status once it is in `state`. */
const rolloutIn = (id: string, state: string) =>
  waitFor(
    `the rollout ${state}`,
    async () => {
      const s = await status(id);
      return s.state === state && s;
    },
    60_000,
    500,
  );
/** Each agent takes faults on its own HTTP surface, with its own device token. */
const agentFaults = (id: string) => new Client({ baseUrl: net.agents[id].url, token: net.tokens[id] });
/** A package of its own pushed, and four endpoints of one relay to roll it out to. */
const fourTargets = async (pkg: string, relay: string) => {
  await pushPackage(net, pkg, '1.0.0', { 'v.txt': `${pkg}\n` });
  return Object.keys(net.agents)
    .filter((id) => id.startsWith(`${relay}-`))
    .slice(0, 4);
};
/** One job a ring and no other of the package, and every target holding its file. */
const oneJobARing = async (pkg: string, done: any, targets: string[]) => {
  const jobs = (await net.admin.get<any[]>('api/v1/jobs?limit=1000&view=summary')).filter((j: any) =>
    j.packages.some((p: any) => p.name === pkg),
  );
  expect(jobs.map((j: any) => j.jobId).sort()).toEqual(done.rings.map((g: any) => g.jobId).sort());
  for (const d of targets) expect(existsSync(join(net.agents[d].root, pkg, '1.0.0', 'v.txt'))).toBe(true);
};

describe('rings', () => {
  it('halts on a ring that fails past the limit, raises ROLLOUT_HALTED, and goes on when resumed', async () => {
    const created = await cli([
      'job',
      'create',
      '--package',
      'app@1.0.0',
      '--label',
      'role=pos',
      '--rings',
      '10%,50%,100%',
      '--halt-on-failure-rate',
      '20%',
      '--ring-wait',
      '1s',
      '--param',
      'maxAttempts=1',
    ]);
    const id = created.jobId;
    expect(created.rings.map((g: any) => g.devices.length)).toEqual([2, 8, 10]);
    // Three endpoints of the second ring will fail their install (3 of 8: 37.5% > 20%).
    const failing = created.rings[1].devices.slice(0, 3) as string[];
    for (const d of failing) await agentFaults(d).post('admin/v1/faults', { 'agent.install': 'exit:3' });

    const halted = await rolloutIn(id, 'halted');
    expect(halted.rings.map((g: any) => g.state)).toEqual(['complete', 'failed', 'waiting']);
    expect(halted.rings[1].failureRate).toBe('37.5%');
    expect(halted.createdBy).toBe('admin');
    expect(halted.reason).toMatch(/ring 2 of 3: 37\.5% of 8 target\(s\) failed, past the limit of 20%/);
    // The dashboard's list gives each ring's size, not its devices (10,000 names for a fleet's rollout).
    const [summary] = await net.admin.get<any[]>('api/v1/rollouts?view=summary');
    expect(summary.rings.map((g: any) => [g.deviceCount, g.devices])).toEqual([
      [2, undefined],
      [8, undefined],
      [10, undefined],
    ]);
    // The third ring did not start: nothing of it on any disk.
    for (const d of created.rings[2].devices as string[])
      expect(existsSync(join(net.agents[d].root, 'app', '1.0.0'))).toBe(false);
    // ROLLOUT_HALTED went through the alert center like any alert, and made a ticket.
    const alerts = await net.admin.get<any[]>('api/v1/alerts');
    const alert = alerts.find((a) => a.failureType === 'ROLLOUT_HALTED');
    expect(alert).toMatchObject({ outcome: 'ticket', jobId: null });
    expect(alert.message).toContain(`rollout ${id} halted at job ${halted.rings[1].jobId}`);
    // A halted ring is not a relay failure: only the ring's failed installs are failed distributions.
    const failedRecords = await net.admin.get<any[]>('api/v1/failed');
    expect(failedRecords.filter((f) => f.jobId === halted.rings[1].jobId).map((f) => f.failureType)).toEqual([
      'INSTALL_FAILED',
    ]);

    // The dashboard shows the rings and a Halted banner with Resume and Abort.
    const browser = await chromium.launch({
      executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run'],
    });
    try {
      const page = await browser.newPage({ ignoreHTTPSErrors: true });
      await page.goto(`${net.master.url}/?token=${encodeURIComponent(net.adminToken)}`);
      const card = page.locator(`[data-rollout="${id}"]`);
      await card.getByRole('alert').waitFor({ timeout: 15_000 });
      expect(await card.getByRole('alert').innerText()).toMatch(/Halted\.\s+ring 2 of 3: 37\.5%/);
      // Enabled once the page knows the caller may decide (its /api/v1/me answer).
      await expect.poll(() => card.getByRole('button', { name: 'Resume' }).isEnabled(), { timeout: 15_000 }).toBe(true);
      expect(await card.locator('.rings li').allInnerTexts()).toEqual([
        expect.stringMatching(/ring 1 \(10%, 2\)[\s\S]*2\/2 installed/),
        expect.stringMatching(/ring 2 \(50%, 8\)[\s\S]*5\/8 installed, 3 failed/),
        expect.stringMatching(/ring 3 \(100%, 10\)[\s\S]*waiting/),
      ]);
      if (process.env.SCREENSHOTS) await page.screenshot({ path: join(process.env.SCREENSHOTS, 'rollout-halted.png') });
    } finally {
      await browser.close();
    }

    // Fixed; an operator resumes: the third ring starts and completes.
    for (const d of failing) await agentFaults(d).json('DELETE', 'admin/v1/faults');
    expect(await cli(['job', 'resume', id])).toEqual({ jobId: id, state: 'running' });
    const done = await rolloutIn(id, 'complete');
    expect(done.rings.map((g: any) => g.state)).toEqual(['complete', 'failed', 'complete']);
    for (const d of created.rings[2].devices as string[])
      expect(existsSync(join(net.agents[d].root, 'app', '1.0.0', 'v.txt'))).toBe(true);
    // The failed ring is an ordinary failed job: the redistribution tool can repair it.
    const relayOf = (d: string) => d.replace(/-pos-\d+$/, '');
    const relay = relayOf(failing[0]);
    const { plans } = await net.admin.post<{ plans: any[] }>(`api/v1/relays/${relay}/plans`, {
      jobId: done.rings[1].jobId,
    });
    const redo = failing.filter((d) => relayOf(d) === relay);
    expect([...plans[0].distributionList].sort()).toEqual(redo.sort());
    // Their content was verified before the scripts failed: approved, they install from what they
    // hold, and the relay sends them nothing.
    expect(plans[0].bytesToSend).toBe(0);
    const served = async () =>
      Number(
        /^fanout_relay_content_bytes_served_total (\d+)/m.exec(
          await (await fetch(`${net.relays[relay].url}/metrics`)).text(),
        )?.[1],
      );
    const before = await served();
    await net.admin.post(`api/v1/plans/${plans[0].planId}/approve`, { by: 'test' });
    await waitFor(
      'the repaired endpoints installed',
      async () => redo.every((d) => existsSync(join(net.agents[d].root, 'app', 'current', 'v.txt'))),
      60_000,
    );
    expect(await served()).toBe(before);
    for (const d of redo)
      expect(readFileSync(net.agents[d].logFile, 'utf8')).toMatch(/kept from an earlier try, not downloaded/);
  }, 180_000);

  it('an aborted rollout starts no further ring', async () => {
    const created = await cli([
      'job',
      'create',
      '--package',
      'app@2.0.0',
      '--label',
      'role=pos',
      '--rings',
      '10%,100%',
      '--ring-wait',
      '1h',
    ]);
    await waitFor(
      'the first ring complete',
      async () => (await status(created.jobId)).rings[0].state === 'complete',
      60_000,
      500,
    );
    expect(await cli(['job', 'abort', created.jobId])).toEqual({ jobId: created.jobId, state: 'aborted' });
    const s = await status(created.jobId);
    expect(s.rings.map((g: any) => g.state)).toEqual(['complete', 'waiting']);
    expect(s.reason).toBe('aborted by admin');
    // The job list pages like every list: one at a time, newest first.
    const [first] = await cli(['job', 'list', '--limit', '1']);
    const [next] = await cli(['job', 'list', '--limit', '1', '--offset', '1']);
    expect(first.jobId).toMatch(/^j-/);
    expect(next.jobId).not.toBe(first.jobId);
    expect((await cli(['job', 'list', '--limit', '2'])).map((j: any) => j.jobId)).toEqual([first.jobId, next.jobId]);
    expect(await cli(['outage', 'list', '--limit', '1', '--offset', '1000'])).toEqual([]);
    // And narrows by state on the master: the first ring's job is complete, the rollout's job is not.
    const complete = await cli(['job', 'list', '--state', 'complete']);
    expect(complete.length).toBeGreaterThan(0);
    expect(complete.every((j: any) => j.state === 'complete')).toBe(true);
    expect(complete.map((j: any) => j.jobId)).toContain(s.rings[0].jobId);
    // Each ring's job names its rollout, in the list (--json and the table) and in its status.
    const firstRing = s.rings[0].jobId;
    expect((await cli(['job', 'list'])).find((j: any) => j.jobId === firstRing).ringOf).toEqual({
      rollout: created.jobId,
      ring: 1,
      of: 2,
    });
    expect((await runFanout(['job', 'list'], { env: net.env })).stdout).toMatch(
      new RegExp(`${firstRing} .*ring 1 of 2 of rollout ${created.jobId}`),
    );
    expect((await runFanout(['job', 'status', firstRing], { env: net.env })).stdout).toMatch(
      new RegExp(`^job ${firstRing}: complete \\(.*\\), ring 1 of 2 of rollout ${created.jobId}\n`),
    );
    const bad = await runFanout(['job', 'list', '--state', 'done'], { env: net.env });
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/state.*running.*complete.*failed/);
    // Resuming an aborted rollout is refused, with why.
    const r = await runFanout(['job', 'resume', created.jobId], { env: net.env });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/is aborted, not halted/);
    // A rollout is stopped with abort, not cancel: the command says so.
    const c = await runFanout(['job', 'cancel', created.jobId], { env: net.env });
    expect(c.code).toBe(1);
    expect(c.stderr).toContain(`${created.jobId} is a rollout: \`fanout job abort ${created.jobId}\``);
  }, 120_000);
  it('starts a ring once when the master fails between saving the ring and creating its job', async () => {
    const targets = await fourTargets('once', 'relay-n');
    // Once, right after the master moved the rollout to its second ring: the next tick goes on from there.
    await net.admin.post('admin/v1/faults', { 'rollout.ring': 'fail:1' });
    const created = await cli([
      'job',
      'create',
      '--package',
      'once@1.0.0',
      ...targets.flatMap((t) => ['--target', t]),
      '--rings',
      '50%,100%',
    ]);
    const done = await rolloutIn(created.jobId, 'complete');
    expect(await net.admin.get('admin/v1/faults')).toEqual({}); // it fired
    // One job a ring: before, the ring whose start failed was started again, a second job for it.
    await oneJobARing('once', done, targets);
  }, 120_000);

  it('a rollout saved before its first job gets that job on the next tick; one refused is not left behind', async () => {
    const targets = await fourTargets('first', 'relay-s');
    const create = (pkg: string) =>
      runFanout(
        ['job', 'create', '--package', pkg, ...targets.flatMap((t) => ['--target', t]), '--rings', '50%,100%'],
        {
          env: net.env,
        },
      );
    const rollouts = async (pkg: string) =>
      (await net.admin.get<any[]>('api/v1/rollouts?view=summary')).filter((r: any) => r.packages.includes(pkg));

    // Refused as it is asked: the operator is told, and no rollout is left behind.
    const refused = await create('nope@1.0.0');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/nope/);
    expect(await rollouts('nope@1.0.0')).toEqual([]);

    // The master fails right after saving a rollout, before its first job: the request fails, and
    // the next tick creates the job. Before, the job was created first and the rollout then lost.
    await net.admin.post('admin/v1/faults', { 'rollout.first': 'fail:1' });
    expect((await create('first@1.0.0')).code).not.toBe(0);
    const [saved] = await rollouts('first@1.0.0');
    expect(saved.state).toBe('running');
    await oneJobARing('first', await rolloutIn(saved.jobId, 'complete'), targets);

    // The same fault on a request the job would refuse: the tick fails the rollout, saying why.
    await net.admin.post('admin/v1/faults', { 'rollout.first': 'fail:1' });
    expect((await create('nope@2.0.0')).code).not.toBe(0);
    const [lost] = await rollouts('nope@2.0.0');
    const failed = await rolloutIn(lost.jobId, 'failed');
    expect(failed.reason).toMatch(/^ring 1's job was refused: .*nope/);
    expect(failed.rings[0].state).toBe('waiting');
  }, 120_000);

  it('an abort cancels the running ring with a cancel the master signed; a forged cancel is refused and the ring goes on', async () => {
    const dir = writePackage(join(net.dir, 'pkgs', 'slow'), 'slow', '1.0.0', {}, 'sleep 20\n');
    await runFanout(['package', 'build', dir, '-o', `${dir}.tgz`]);
    expect((await runFanout(['package', 'push', `${dir}.tgz`], { env: net.env })).code).toBe(0);
    const created = await cli([
      'job',
      'create',
      '--package',
      'slow@1.0.0',
      '--label',
      'role=pos',
      '--rings',
      '10%,100%',
    ]);
    const ring = await waitFor('the first ring installing', async () => {
      const s = await status(created.jobId);
      const j = s.rings[0].jobId && (await net.admin.get(`api/v1/jobs/${s.rings[0].jobId}`));
      return j?.targets.every((t: any) => t.state === 'installing') && j;
    });
    const relayId = ring.targets[0].relayId;

    // A cancel signed by another key, put where the relay reads its commands (a hostile database or
    // channel), then a genuine job for the same relay so that its long-poll wakes at once.
    const forged = signCommand(
      generateSigningKey().privatePem,
      {
        commandId: 'c-forged',
        seq: 0,
        jobId: ring.jobId,
        relayId,
        kind: 'cancel',
        packages: [],
        distributionList: ring.targets.map((t: any) => t.deviceId),
        params: {},
        issuedAt: new Date().toISOString(),
        issuedBy: 'admin',
      },
      new Date(Date.now() + 3_600_000).toISOString(),
    );
    const db = new Database(join(net.dir, 'master', 'master.db'));
    db.prepare(
      'insert into commands (command_id, job_id, relay_id, kind, body, issued_at) values (?, ?, ?, ?, ?, ?)',
    ).run(forged.commandId, forged.jobId, relayId, 'cancel', JSON.stringify(forged), forged.issuedAt);
    db.close();
    const other = Object.keys(net.agents).find(
      (id) => id.startsWith(`${relayId}-`) && !ring.targets.some((t: any) => t.deviceId === id),
    )!;
    const plain = await cli(['job', 'create', '--package', 'app@1.0.0', '--target', other]);
    expect((await status(plain.jobId)).ringOf).toBeNull();
    const refused = await waitFor('the forged cancel refused', async () =>
      (await cli(['alerts', 'list', '--device', relayId, '--type', 'SIGNATURE_INVALID'])).find(
        (a: any) => a.jobId === ring.jobId,
      ),
    );
    expect(refused.message).toMatch(/cancel refused, the job goes on: command c-forged: the signature does not verify/);
    const still = await net.admin.get(`api/v1/jobs/${ring.jobId}`);
    expect(still.targets.map((t: any) => t.state)).toEqual(ring.targets.map(() => 'installing'));

    // The operator's abort: the master signs the cancel, the relay ends the open targets and names who.
    await cli(['job', 'abort', created.jobId]);
    const cancelled = await waitFor('the ring cancelled', async () => {
      const j = await net.admin.get(`api/v1/jobs/${ring.jobId}`);
      return j.state === 'failed' && j;
    });
    for (const t of cancelled.targets)
      expect(t).toMatchObject({ state: 'failed', failureType: 'CANCELLED', error: 'the job was cancelled by admin' });
  }, 120_000);
});
