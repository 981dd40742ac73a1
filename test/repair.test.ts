// Issue 4: the whole repair loop with real processes, SMTP and the redistribution tool.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MailSink } from '../src/lab/mail-sink.ts';
import { Client } from '../src/protocol/client.ts';
import { type Network, runFanout, startNetwork, waitFor, writePackage } from './helpers.ts';

let net: Network;
const sink = new MailSink();
const targets = ['relay-dal-pos-1', 'relay-dal-pos-2', 'relay-dal-pos-3'];

const cli = async (args: string[], input?: string) => {
  const r = await runFanout([...args, '--json'], { env: net.env, input });
  expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
  return JSON.parse(r.stdout);
};
/** Builds and pushes pos-app VERSION whose app.txt says TEXT. */
const pushPackage = async (folder: string, version: string, text: string) => {
  const dir = writePackage(join(net.dir, 'pkgs', folder), 'pos-app', version, { 'app.txt': `${text}\n` });
  await runFanout(['package', 'build', dir, '-o', `${dir}.tgz`]);
  await cli(['package', 'push', `${dir}.tgz`]);
};
/** Builds and pushes NAME@VERSION whose install script exits with CODE. */
const pushExiting = async (name: string, version: string, code: number) => {
  const dir = writePackage(
    join(net.dir, 'pkgs', `${name}-${version}`),
    name,
    version,
    { 'v.txt': version },
    `#!/bin/sh\nexit ${code}\n`,
  );
  await runFanout(['package', 'build', dir, '-o', `${dir}.tgz`]);
  await cli(['package', 'push', `${dir}.tgz`]);
};
const adminOf = (relay: { url: string; data: string }) =>
  new Client({ baseUrl: relay.url, token: readFileSync(join(relay.data, 'admin.token'), 'utf8').trim() });
const scriptRuns = (id: string, pkg: string) => {
  try {
    return readFileSync(join(net.agents[id].root, pkg, 'runs.log'), 'utf8')
      .trim()
      .split('\n').length;
  } catch {
    return 0;
  }
};
const served = async () => {
  const text = await (await fetch(`${net.master.url}/metrics`)).text();
  return Object.fromEntries(
    [...text.matchAll(/fanout_blob_bytes_served_total\{digest="([^"]+)"\} (\d+)/g)].map((m) => [m[1], Number(m[2])]),
  );
};

beforeAll(async () => {
  const port = await sink.listen();
  net = await startNetwork({
    name: 'repair',
    relays: ['relay-dal'],
    agentsPerRelay: 3,
    config: `mail:\n  smtp: { host: 127.0.0.1, port: ${port} }\n  retryBaseMs: 200\nredistribution:\n  planOnTicketResolve: true\n  autoApprove: false\n`,
  });
});
afterAll(async () => {
  await net?.stopAll();
  await sink.close();
});

describe('repair loop', () => {
  it('ENOSPC fails a job → alert → ticket → mail; resolve → plan of the missing targets → approve → all installed', async () => {
    // Each install appends to a file outside the version folder, so re-installs would show.
    const install = '#!/bin/sh\necho "$FANOUT_JOB" >> ../runs.log\n';
    const pkgs = [
      writePackage(join(net.dir, 'pkgs', 'pos-app'), 'pos-app', '3.0.0', { 'app.txt': 'app 3\n' }, install),
      writePackage(join(net.dir, 'pkgs', 'pos-fonts'), 'pos-fonts', '1.2.0', { 'fonts.txt': 'fonts\n' }, install),
    ];
    const pushed: { digest: string; size: number }[] = [];
    for (const dir of pkgs) {
      await runFanout(['package', 'build', dir, '-o', `${dir}.tgz`]);
      pushed.push(await cli(['package', 'push', `${dir}.tgz`]));
    }
    // pos-3 is switched off while the others install.
    await net.agents['relay-dal-pos-3'].stop();
    const { jobId } = await cli([
      'job',
      'create',
      '--package',
      'pos-app@3.0.0',
      '--package',
      'pos-fonts@1.2.0',
      ...targets.flatMap((t) => ['--target', t]),
      '--param',
      'deadline=8s',
    ]);
    const started = await waitFor('pos-1 and pos-2 installed', async () => {
      const st = await cli(['job', 'status', jobId]);
      return st.targets.filter((t: any) => t.state === 'installed').length === 2 && st;
    });
    expect(started.createdBy).toBe('admin'); // the master's token; a person's token names them
    // The relay's disk fills up while pos-3 is still off; at the deadline, the job log cannot take
    // pos-3's end: the relay fails the job as DISK_FULL.
    const relay = net.relays['relay-dal'];
    const relayAdmin = adminOf(relay);
    await relayAdmin.post('admin/v1/faults', { 'relay.joblog.write': 'ENOSPC' });
    const failed = await runFanout(['job', 'wait', jobId, '--timeout', '30', '--json'], { env: net.env });
    expect(failed.code).toBe(1);
    const st = JSON.parse(failed.stdout);
    // pos-3 missed the deadline; the relay failed the job because its disk refused to record that.
    expect(st.targets.find((t: any) => t.deviceId === 'relay-dal-pos-3')).toMatchObject({
      state: 'failed',
      failureType: 'DEADLINE',
    });
    expect(st.relays[0]).toMatchObject({ state: 'failed', failureType: 'DISK_FULL' });
    expect(st.targets.filter((t: any) => t.state === 'installed').map((t: any) => t.deviceId)).toEqual([
      'relay-dal-pos-1',
      'relay-dal-pos-2',
    ]);
    await net.startAgent('relay-dal-pos-3', 'relay-dal'); // pos-3 is back on

    // alert → failed distribution → ticket → mail
    const ticket = await waitFor('a DISK_FULL ticket for relay-dal', async () =>
      (await cli(['tickets', 'list'])).find((t: any) => t.deviceId === 'relay-dal' && t.failureType === 'DISK_FULL'),
    );
    const alert = (await cli(['alerts', 'list'])).find((a: any) => a.ticketId === ticket.id);
    expect(alert.jobId).toBe(jobId);
    expect(alert.message).toMatch(/ENOSPC/);
    const mail = await waitFor('the ticket mail', async () => sink.messages.find((m) => m.subject.includes(ticket.id)));
    expect(mail.text).toContain(jobId);
    expect((await cli(['failed', 'list'])).find((f: any) => f.jobId === jobId)).toMatchObject({
      relayId: 'relay-dal',
      state: 'open',
      ticketId: ticket.id,
    });

    // The disk is cleared; the records it refused are written.
    await relayAdmin.json('DELETE', 'admin/v1/faults');
    await waitFor('the failure on disk in the job log', async () =>
      readFileSync(join(relay.data, 'jobs', `${jobId}.jsonl`), 'utf8').includes('"type":"failed"'),
    );

    // Answering "no" at the prompt changes nothing.
    const logBefore = readFileSync(join(relay.data, 'jobs', `${jobId}.jsonl`), 'utf8');
    const no = await runFanout(['redistribute', '--data', relay.data, '--job', jobId], { input: 'n\n' });
    expect(no.code, no.stderr).toBe(2); // declined: a script can tell it from done (0) and failed (1)
    expect(no.stdout).toContain('recipients (1)');
    expect(no.stdout).toContain('relay-dal-pos-3');
    expect(no.stdout).toMatch(/2 already installed and left out/);
    expect(no.stdout).toContain('nothing was changed');
    expect(readFileSync(join(relay.data, 'jobs', `${jobId}.jsonl`), 'utf8')).toBe(logBefore);
    expect((await cli(['job', 'status', jobId])).state).toBe('failed');

    // Resolving the ticket asks the relay for a plan: only the missing target.
    const resolved = await cli(['ticket', 'resolve', ticket.id]);
    expect(resolved.plans).toHaveLength(1);
    const plan = resolved.plans[0];
    expect(plan).toMatchObject({ jobId, state: 'pending', distributionList: ['relay-dal-pos-3'] });
    expect(plan.packages.map((p: any) => `${p.name}@${p.version}`)).toEqual(['pos-app@3.0.0', 'pos-fonts@1.2.0']);
    expect(plan.bytesInDepot).toBe(pushed[0].size + pushed[1].size);

    // Without --job, the tool finds the failed job itself, and returns the plan already waiting.
    const dry = await runFanout([
      'redistribute',
      '--relay',
      relay.url,
      '--token-file',
      join(relay.data, 'admin.token'),
      '--dry-run',
      '--json',
    ]);
    expect(dry.code, dry.stderr).toBe(0);
    expect(JSON.parse(dry.stdout).plans.map((p: any) => [p.jobId, p.planId])).toEqual([[jobId, plan.planId]]);

    // Approved with the tool over the relay's admin API; it follows the job to the end.
    const servedBefore = await served();
    const yes = await runFanout([
      'redistribute',
      '--relay',
      relay.url,
      '--token',
      readFileSync(join(relay.data, 'admin.token'), 'utf8').trim(),
      '--job',
      jobId,
      '--yes',
      '--by',
      'test-operator',
      '--json',
    ]);
    expect(yes.code, yes.stderr).toBe(0);
    const out = JSON.parse(yes.stdout);
    expect(out.plans[0]).toMatchObject({
      planId: plan.planId,
      state: 'complete',
      distributionList: ['relay-dal-pos-3'],
      repeats: plan.repeats,
    });

    // The master hears of it with the relay's next report (batched every 200 ms).
    await waitFor(
      'the job complete at the master',
      async () => (await cli(['job', 'status', jobId])).state === 'complete',
    );
    const done = await runFanout(['job', 'wait', jobId, '--timeout', '30', '--json'], { env: net.env });
    expect(done.code, done.stdout).toBe(0);
    expect(JSON.parse(done.stdout).targets.every((t: any) => t.state === 'installed')).toBe(true);
    for (const t of targets) {
      expect(readFileSync(join(net.agents[t].root, 'pos-app', 'current', 'app.txt'), 'utf8')).toBe('app 3\n');
      expect(scriptRuns(t, 'pos-app')).toBe(1); // installed once, whether before the failure or after
    }
    // Content already verified in the depot was not fetched again.
    expect(await served()).toEqual(servedBefore);
    for (const p of pushed) expect(servedBefore[p.digest]).toBe(p.size);

    // History: the job log keeps the original command, the failure and the redistribution with who approved it.
    const log = readFileSync(join(relay.data, 'jobs', `${jobId}.jsonl`), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(log[0].type).toBe('command');
    const red = log.find((r: any) => r.type === 'redistribution');
    expect(red).toMatchObject({ approvedBy: 'test-operator', planId: plan.planId });
    expect(red.command).toMatchObject({
      kind: 'redistribute',
      repeats: log[0].command.commandId,
      distributionList: ['relay-dal-pos-3'],
    });

    // The failed distribution and the job's ticket are resolved.
    await waitFor(
      'failed distribution resolved',
      async () => (await cli(['failed', 'list'])).find((f: any) => f.jobId === jobId)?.state === 'resolved',
    );
    expect((await cli(['tickets', 'list'])).find((t: any) => t.id === ticket.id).state).toBe('resolved');
    const plans = await net.admin.get('api/v1/plans');
    expect(plans.find((p: any) => p.planId === plan.planId).state).toBe('complete');
    // At the master's command line: the plan is listed, and a second approval says why not.
    expect((await cli(['plans', 'list', '--state', 'complete'])).map((p: any) => p.planId)).toContain(plan.planId);
    const again = await runFanout(['plan', 'approve', plan.planId], { env: net.env });
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/it is complete, not pending \[FANOUT_ERR_PLAN_STATE\]/);
  });

  it('explains why there is nothing to redistribute', async () => {
    const r = await runFanout(['redistribute', '--data', net.relays['relay-dal'].data, '--dry-run']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('nothing to redistribute');
    const bad = await runFanout(['redistribute', '--data', net.relays['relay-dal'].data, '--relay', 'http://x']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/--data DIR .* or --relay URL/);
  });

  it('on the relay host with the relay down, an approved plan goes into the job log and runs when the relay starts', async () => {
    await pushPackage('pos-app-31', '3.1.0', 'app 3.1');
    const relay = net.relays['relay-dal'];
    const relayAdmin = adminOf(relay);
    await relayAdmin.post('admin/v1/faults', { 'relay.depot.write': 'ENOSPC' });
    // Its command expires with its deadline: the approval needs the master's fresh signature.
    const { jobId } = await cli([
      'job',
      'create',
      '--package',
      'pos-app@3.1.0',
      ...targets.flatMap((t) => ['--target', t]),
      '--param',
      'deadline=45s',
    ]);
    const failed = await runFanout(['job', 'wait', jobId, '--timeout', '30', '--json'], { env: net.env });
    expect(failed.code).toBe(1);
    await relay.stop();

    // Resolving the ticket while the relay is down says so (the plan is asked for when it is back).
    const ticket = await waitFor('a ticket for the job', async () =>
      (await cli(['tickets', 'list'])).find((t: any) => t.jobs.includes(jobId) && t.state !== 'resolved'),
    );
    const res = await runFanout(['ticket', 'resolve', ticket.id], { env: net.env });
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(
      new RegExp(`relay relay-dal cannot be asked for a plan for job ${jobId} now .*asked again when it is back`),
    );

    // Approved at the prompt (piped input, as a terminal would give it).
    const r = await runFanout(['redistribute', '--data', relay.data, '--job', jobId, '--by', 'night-shift', '--json'], {
      input: 'y\n',
    });
    expect(r.code, r.stderr).toBe(0);
    // Before, the tool could not reach the master from here: "start the relay and approve it there".
    expect(r.stderr).toContain(`planning from its job log and from what its master at ${net.master.url} knows`);
    expect(r.stderr).toContain('runs when the relay starts');
    const out = JSON.parse(r.stdout);
    expect(out.plans[0]).toMatchObject({ jobId, state: 'approved', distributionList: targets });

    await net.startRelay('relay-dal', ['--listen', new URL(relay.url).host]);
    const done = await runFanout(['job', 'wait', jobId, '--timeout', '30', '--json'], { env: net.env });
    expect(done.code, done.stdout).toBe(0);
    for (const t of targets)
      expect(readFileSync(join(net.agents[t].root, 'pos-app', 'current', 'app.txt'), 'utf8')).toBe('app 3.1\n');
    const plans = await net.admin.get('api/v1/plans');
    await waitFor(
      'the plan complete on the master',
      async () => (await net.admin.get('api/v1/plans')).find((p: any) => p.jobId === jobId)?.state === 'complete',
    );
    expect(plans.length).toBeGreaterThan(0);
    // The plan approved on the relay's host repaired the job: none is left pending for it.
    const forJob = (await net.admin.get('api/v1/plans')).filter((p: any) => p.jobId === jobId);
    expect(forJob.filter((p: any) => p.state === 'pending')).toEqual([]);
  });

  /** The relay stopped, the ticket resolved (the master waits for it), the relay started: the plan it then asks for. */
  const resolvedWhileDown = async (ticketId: string, jobId: string) => {
    const relay = net.relays['relay-dal'];
    await relay.stop();
    const res = await cli(['ticket', 'resolve', ticketId]);
    await net.startRelay('relay-dal', ['--listen', new URL(relay.url).host]);
    // The endpoint's ticket may also stand for an earlier test's job: this one is among those waiting.
    expect(res.waiting).toEqual(expect.arrayContaining([expect.objectContaining({ relayId: 'relay-dal', jobId })]));
    const plan = await waitFor(
      "the plan asked for at the relay's first heartbeats",
      async () => (await cli(['plans', 'list', '--state', 'pending'])).find((p: any) => p.jobId === jobId),
      20_000,
    );
    return { res, plan };
  };

  it('a ticket resolved while its relay is down gets its plan when the relay is back', async () => {
    await pushPackage('pos-app-32', '3.2.0', 'app 3.2');
    const relay = net.relays['relay-dal'];
    const relayAdmin = adminOf(relay);
    await relayAdmin.post('admin/v1/faults', { 'relay.depot.write': 'ENOSPC' });
    const { jobId } = await cli([
      'job',
      'create',
      '--package',
      'pos-app@3.2.0',
      ...targets.flatMap((t) => ['--target', t]),
    ]);
    await waitFor('the job failed', async () => (await cli(['job', 'status', jobId])).state === 'failed');
    const ticket = await waitFor('its ticket', async () =>
      (await cli(['tickets', 'list'])).find((t: any) => t.jobs.includes(jobId) && t.state !== 'resolved'),
    );
    // The master has all of the failed job: the relay's next start takes it from its summary file,
    // not its log, and the plan below is built from the log read back on demand.
    const summary = join(relay.data, 'jobs', `${jobId}.summary.json`);
    await waitFor('the job acknowledged whole', async () => existsSync(summary));
    // Stopped, its faults go with it: the disk is "fixed".
    const { res, plan } = await resolvedWhileDown(ticket.id, jobId);
    expect(res.plans).toEqual([]);
    expect(res.waiting).toHaveLength(1);
    expect(JSON.parse(readFileSync(summary, 'utf8')).summary).toMatchObject({ jobId, phase: 'failed' });
    // What the operator reads at the master before approving: the plan whole.
    expect(await cli(['plan', 'show', plan.planId])).toMatchObject({
      planId: plan.planId,
      jobId,
      relayId: 'relay-dal',
      state: 'pending',
      distributionList: [...targets].sort(),
      packages: [{ name: 'pos-app', version: '3.2.0' }],
    });
    const shown = await runFanout(['plan', 'show', plan.planId], { env: net.env });
    expect(shown.stdout).toContain(`Plan ${plan.planId} for job ${jobId} on relay relay-dal (pending)`);
    expect(shown.stdout).toMatch(/packages\s+pos-app@3\.2\.0/);
    expect(shown.stdout).toMatch(new RegExp(`recipients \\(${targets.length}\\)`));
    const unknown = await runFanout(['plan', 'show', 'p-nothing'], { env: net.env });
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toMatch(/p-nothing/);
    await cli(['plan', 'approve', plan.planId, '--by', 'day-shift']);
    await waitFor('the job complete', async () => (await cli(['job', 'status', jobId])).state === 'complete', 30_000);
  });

  it('a rejected plan stays rejected: the master does not ask the relay for another by itself', async () => {
    await pushExiting('refused', '1.0.0', 3);
    const { jobId } = await cli([
      'job',
      'create',
      '--package',
      'refused@1.0.0',
      '--target',
      targets[0],
      '--param',
      'maxAttempts=1',
    ]);
    await waitFor('the job failed', async () => (await cli(['job', 'status', jobId])).state === 'failed', 30_000);
    const record = await waitFor('its failed distribution', async () =>
      (await cli(['failed', 'list'])).find((f: any) => f.jobId === jobId && f.ticketId),
    );
    const { plans } = await cli(['ticket', 'resolve', record.ticketId]);
    expect(plans).toMatchObject([{ jobId, state: 'pending' }]);
    await cli(['plan', 'reject', plans[0].planId]);
    // Heartbeats come every second here: before, the next one brought an identical plan back.
    await new Promise((r) => setTimeout(r, 4_000));
    const forJob = (await cli(['plans', 'list'])).filter((p: any) => p.jobId === jobId);
    expect(forJob.map((p: any) => p.state)).toEqual(['rejected']);
    // Asked for by hand, a new one comes.
    const asked = await net.admin.post<{ plans: any[] }>('api/v1/relays/relay-dal/plans', { jobId });
    expect(asked.plans).toMatchObject([{ jobId, state: 'pending' }]);
  });

  /** A job whose install fails on two endpoints: a ticket each, the failed distribution naming the later. */
  const twoTickets = async (pkg: string) => {
    await pushExiting(pkg, '1.0.0', 3);
    const { jobId } = await cli([
      'job',
      'create',
      '--package',
      `${pkg}@1.0.0`,
      ...[targets[0], targets[1]].flatMap((t) => ['--target', t]),
      '--param',
      'maxAttempts=1',
    ]);
    await waitFor('the job failed', async () => (await cli(['job', 'status', jobId])).state === 'failed', 30_000);
    const mine = async () => (await cli(['tickets', 'list'])).filter((t: any) => t.jobs.includes(jobId));
    const both = await waitFor('a ticket for each endpoint', async () => (await mine()).length === 2 && mine());
    const record = (await cli(['failed', 'list'])).find((f: any) => f.jobId === jobId);
    const earlier = both.find((t: any) => t.id !== record.ticketId);
    expect(earlier).toBeDefined();
    return { jobId, earlier };
  };

  it("resolving either endpoint's ticket asks for the plan, not only the last one's", async () => {
    const { jobId, earlier } = await twoTickets('two-down');
    const plans = (await cli(['ticket', 'resolve', earlier.id])).plans.filter((p: any) => p.jobId === jobId);
    expect(plans).toMatchObject([{ jobId, state: 'pending' }]);
    expect([...plans[0].distributionList].sort()).toEqual([targets[0], targets[1]]);
    await cli(['plan', 'reject', plans[0].planId]);
  });

  it("the earlier endpoint's ticket resolved while the relay is down gets its plan when the relay is back", async () => {
    const { jobId, earlier } = await twoTickets('two-down-later');
    const relay = net.relays['relay-dal'];
    await waitFor('the job acknowledged whole', async () =>
      existsSync(join(relay.data, 'jobs', `${jobId}.summary.json`)),
    );
    const { plan } = await resolvedWhileDown(earlier.id, jobId);
    await cli(['plan', 'reject', plan.planId]);
  });

  it('a plan leaves out the targets a later job moved on to a newer version, and says so', async () => {
    const [, pos2, pos3] = targets;
    await pushExiting('mover', '1.0.0', 3);
    await pushExiting('mover', '1.1.0', 0);
    const job = async (version: string, to: string[], ends: string) => {
      const { jobId } = await cli([
        'job',
        'create',
        '--package',
        `mover@${version}`,
        '--param',
        'maxAttempts=1',
        ...to.flatMap((t) => ['--target', t]),
      ]);
      await waitFor(`job ${jobId} ${ends}`, async () => (await cli(['job', 'status', jobId])).state === ends, 30_000);
      return jobId;
    };
    const failed = await job('1.0.0', [pos2, pos3], 'failed');
    const later = await job('1.1.0', [pos2], 'complete');
    const relay = net.relays['relay-dal'];
    const token = join(relay.data, 'admin.token');
    // From anywhere, through the relay, and on the relay's host from its job log: the same plan.
    for (const where of [
      ['--relay', relay.url, '--token-file', token],
      ['--data', relay.data],
    ]) {
      const { plans } = await cli(['redistribute', ...where, '--job', failed, '--dry-run']);
      expect(plans).toMatchObject([
        {
          distributionList: [pos3],
          movedOn: [{ deviceId: pos2, why: `job ${later} installed mover@1.1.0 there since` }],
        },
      ]);
      const text = await runFanout(['redistribute', ...where, '--job', failed, '--dry-run']);
      expect(text.stdout).toMatch(new RegExp(`moved on +1 target\\(s\\) left out.*${pos2} \\(job ${later}`));
    }
    // Once every target not installed has moved on, there is nothing to redistribute, and why.
    await job('1.1.0', [pos3], 'complete');
    const none = await runFanout([
      'redistribute',
      '--relay',
      relay.url,
      '--token-file',
      token,
      '--job',
      failed,
      '--dry-run',
    ]);
    expect(none.code).toBe(0);
    expect(none.stdout).toContain('every target not installed has moved on to a newer version');
    expect(none.stdout).toContain(`${pos3}: job `);
    // Resolving its ticket settles the failure for good: no plan will ever be needed, so its record
    // is resolved with the job's other tickets, and the master stops asking the relay at each heartbeat.
    const tickets = (await cli(['tickets', 'list'])).filter((t: any) => t.jobs.includes(failed));
    expect(tickets.map((t: any) => t.deviceId).sort()).toEqual([pos2, pos3]);
    const record = async () => (await cli(['failed', 'list'])).find((f: any) => f.jobId === failed);
    const resolved = await runFanout(['ticket', 'resolve', (await record()).ticketId], { env: net.env });
    expect(resolved.stdout).toContain(
      `no plan for job ${failed} on relay relay-dal: every target not installed has moved on`,
    );
    expect((await record()).state).toBe('resolved');
    expect(
      (await cli(['tickets', 'list'])).filter((t: any) => t.jobs.includes(failed)).map((t: any) => t.state),
    ).toEqual(['resolved', 'resolved']);
  });
});
