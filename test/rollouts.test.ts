// Rollouts (DESIGN §13, the part built so far): a rollback points `current` back at the version each
// target ran before, only because the signed command allows going down, and without a download when the
// earlier version is still in the install root.
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client } from '../src/protocol/client.ts';
import { inventoryYaml, type Network, runFanout, startNetwork, waitFor, writePackage } from './helpers.ts';

let net: Network;
const RELAY = 'relay-r';
const AGENTS = [`${RELAY}-pos-1`, `${RELAY}-pos-2`];

beforeAll(async () => {
  net = await startNetwork({ name: 'rollouts', relays: [RELAY], agentsPerRelay: 2 });
  for (const v of ['1.0.0', '2.0.0']) {
    await pushed(join(net.dir, 'pkgs', `app-${v}`), 'app', v, { 'v.txt': `${v}\n` });
  }
});
afterAll(async () => {
  await net?.stopAll();
});

/** A package written, built and pushed to the master. */
const pushed = async (...args: Parameters<typeof writePackage>) => {
  const dir = writePackage(...args);
  await runFanout(['package', 'build', dir, '-o', `${dir}.tgz`]);
  expect((await runFanout(['package', 'push', `${dir}.tgz`], { env: net.env })).code).toBe(0);
  return dir;
};
const cli = async (args: string[]) => {
  const r = await runFanout([...args, '--json'], { env: net.env });
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout);
};
/** An agent's journal entries for one job: every step it reported, with when. */
const journal = (agentId: string, jobId: string): { state: string; at: string }[] =>
  readFileSync(join(net.agents[agentId].data, 'journal.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l))
    .filter((e) => e.jobId === jobId);
/** What the relay served to all AGENTS at once, KB/s: from the first download's start to the last one's end. */
const servedKBps = (jobId: string, bytesEach: number) => {
  const steps = AGENTS.flatMap((id) => journal(id, jobId));
  const first = steps
    .filter((e) => e.state === 'downloading')
    .map((e) => e.at)
    .sort()[0];
  const last = steps
    .filter((e) => e.state === 'installing')
    .map((e) => e.at)
    .sort()
    .at(-1)!;
  return (AGENTS.length * bytesEach) / 1024 / ((Date.parse(last) - Date.parse(first)) / 1000);
};
/** `fanout job create` of one package for one endpoint, with `key=value` parameters. */
const jobFor = (pkg: string, target: string, ...params: string[]) =>
  cli(['job', 'create', '--package', pkg, '--target', target, ...params.flatMap((p) => ['--param', p])]);
const complete = (jobId: string) =>
  waitFor(`${jobId} complete`, async () => (await net.admin.get(`api/v1/jobs/${jobId}`)).state === 'complete', 30_000);

describe('cancel', () => {
  it('stops a running job at its relay with a signed cancel, naming who; an ended or unknown job is refused', async () => {
    await pushed(join(net.dir, 'pkgs', 'slow'), 'slow', '1.0.0', {}, 'sleep 6\n');
    const job = await cli(['job', 'create', '--package', 'slow@1.0.0', '--label', 'role=pos']);
    await waitFor('both installing', async () =>
      (await net.admin.get(`api/v1/jobs/${job.jobId}`)).targets.every((t: any) => t.state === 'installing'),
    );
    expect(await cli(['job', 'cancel', job.jobId])).toEqual({ jobId: job.jobId, state: 'cancelling' });
    const ended = await waitFor('the job cancelled', async () => {
      const j = await net.admin.get(`api/v1/jobs/${job.jobId}`);
      return j.state === 'failed' && j;
    });
    for (const t of ended.targets)
      expect(t).toMatchObject({ state: 'failed', failureType: 'CANCELLED', error: 'the job was cancelled by admin' });
    // They were installing already: they finish, and the master hears it (the endpoint's disk is the truth).
    await complete(job.jobId);
    const fleet = await cli(['fleet', '--package', 'slow']);
    expect(fleet.devices.map((d: any) => d.installed.slow).sort()).toEqual(['1.0.0', '1.0.0']);
    const again = await runFanout(['job', 'cancel', job.jobId], { env: net.env });
    expect(again.code).not.toBe(0);
    expect(again.stderr).toContain(`job ${job.jobId} is complete: nothing to cancel`);
    expect((await runFanout(['job', 'cancel', 'j-nonesuch'], { env: net.env })).stderr).toMatch(/j-nonesuch/);
    const audit = await net.admin.get<any[]>('api/v1/audit');
    expect(audit.find((a) => a.action === 'POST /api/v1/jobs/:id/cancel')).toMatchObject({ target: job.jobId });
  }, 60_000);
});

describe('rollback', () => {
  it('points current back at the earlier version, with nothing downloaded; going down otherwise is refused', async () => {
    const first = await cli(['job', 'create', '--package', 'app@1.0.0', '--label', 'role=pos']);
    await complete(first.jobId);
    const second = await cli(['job', 'create', '--package', 'app@2.0.0', '--label', 'role=pos']);
    await complete(second.jobId);
    for (const id of AGENTS) expect(readlinkSync(join(net.agents[id].root, 'app', 'current'))).toBe('2.0.0');

    // Asking for 1.0.0 again without a rollback: a downgrade, refused on the endpoint.
    const down = await jobFor('app@1.0.0', AGENTS[0]);
    const refused = await waitFor('the downgrade refused', async () => {
      const j = await net.admin.get(`api/v1/jobs/${down.jobId}`);
      return j.state === 'failed' && j;
    });
    expect(refused.targets[0]).toMatchObject({ failureType: 'DOWNGRADE_REFUSED' });
    expect(refused.targets[0].error).toMatch(/only a signed allowDowngrade \(a rollback\) may go down/);

    // A dry run says what would go back where, and changes nothing.
    const jobsBefore = (await net.admin.get<any[]>('api/v1/jobs')).length;
    expect(await cli(['job', 'rollback', second.jobId, '--dry-run'])).toEqual({
      rollbackOf: second.jobId,
      packages: ['app'],
      jobs: [{ packages: ['app@1.0.0'], targets: AGENTS }],
      skipped: [],
    });
    const shown = await runFanout(['job', 'rollback', second.jobId, '--dry-run'], { env: net.env });
    expect(shown.stdout).toBe(
      `rollback of ${second.jobId} would make 1 job(s) (nothing changed yet):\n  app@1.0.0 on 2 target(s): ${AGENTS.join(', ')}\n`,
    );
    const nothing = await runFanout(['job', 'rollback', first.jobId, '--dry-run'], { env: net.env });
    expect(nothing.stdout).toBe(`nothing to go back to: no target of ${first.jobId} ran an earlier version of app\n`);
    expect((await net.admin.get<any[]>('api/v1/jobs')).length).toBe(jobsBefore);
    const refusedRollback = await runFanout(['job', 'rollback', first.jobId], { env: net.env });
    expect(refusedRollback.code).not.toBe(0);
    expect(refusedRollback.stderr).toContain('there is nothing to go back to');

    const r = await cli(['job', 'rollback', second.jobId]);
    expect(r).toMatchObject({ rollbackOf: second.jobId, state: 'running', skipped: [] });
    await complete(r.jobId);
    const job = await net.admin.get(`api/v1/jobs/${r.jobId}`);
    expect(job.packages.map((p: any) => `${p.name}@${p.version}`)).toEqual(['app@1.0.0']);
    expect(job.params).toMatchObject({ allowDowngrade: true, rollbackOf: second.jobId });
    for (const id of AGENTS) {
      const root = net.agents[id].root;
      expect(readlinkSync(join(root, 'app', 'current'))).toBe('1.0.0');
      expect(readFileSync(join(root, 'app', 'current', 'v.txt'), 'utf8')).toBe('1.0.0\n');
      // The agent's journal for the rollback: installed, never downloading.
      expect(journal(id, r.jobId).map((e) => e.state)).toEqual(['installed']);
    }
    // The attestation still holds: the target reports the signed tree of 1.0.0.
    expect(job.targets.every((t: any) => t.attestation?.['app@1.0.0'])).toBe(true);
  });
});

describe('bandwidth', () => {
  it("rateLimitKBps holds the relay's upstream fetch and its serving to endpoints within 15% of the cap", async () => {
    const KBPS = 200;
    const dir = writePackage(join(net.dir, 'pkgs', 'big'), 'big', '1.0.0', {});
    writeFileSync(join(dir, 'blob.bin'), randomBytes(500 * 1024)); // incompressible
    await runFanout(['package', 'build', dir, '-o', `${dir}.tgz`]);
    const pushed = JSON.parse((await runFanout(['package', 'push', `${dir}.tgz`, '--json'], { env: net.env })).stdout);
    const job = await cli([
      'job',
      'create',
      '--package',
      'big@1.0.0',
      '--label',
      'role=pos',
      '--param',
      `rateLimitKBps=${KBPS}`,
    ]);
    await waitFor(
      'the big job complete',
      async () => (await net.admin.get(`api/v1/jobs/${job.jobId}`)).state === 'complete',
      60_000,
    );
    const rate = (bytes: number, from: string, to: string) =>
      bytes / 1024 / ((Date.parse(to) - Date.parse(from)) / 1000);
    // Upstream: the relay's job log times the fetch from its start to its verification.
    const log = readFileSync(join(net.relays[RELAY].data, 'jobs', `${job.jobId}.jsonl`), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    const started = log.find((r) => r.type === 'fetch' && r.event === 'started');
    const verified = log.find((r) => r.type === 'fetch' && r.event === 'verified');
    const upstream = rate(pushed.size, started.at, verified.at);
    // Serving: both endpoints download at once through one budget; from the first download's start to
    // the last one's end (its next step), the relay served both copies.
    const serving = servedKBps(job.jobId, pushed.size);
    console.log(
      `cap ${KBPS} KB/s: upstream fetch ${upstream.toFixed(0)} KB/s, serving ${serving.toFixed(0)} KB/s (${AGENTS.length} endpoints at once)`,
    );
    expect(Math.abs(upstream - KBPS) / KBPS).toBeLessThan(0.15);
    expect(Math.abs(serving - KBPS) / KBPS).toBeLessThan(0.15);
  }, 90_000);

  it("the inventory's rateLimitKBps for a relay caps its serving to endpoints without a job parameter", async () => {
    const KBPS = 150;
    const inv = inventoryYaml([RELAY], 2).replace(
      `  - id: ${RELAY}\n    kind: relay\n`,
      `  - id: ${RELAY}\n    kind: relay\n    rateLimitKBps: ${KBPS}\n`,
    );
    expect(inv).toContain(`rateLimitKBps: ${KBPS}`);
    writeFileSync(join(net.dir, 'inventory-rate.yaml'), inv);
    expect(
      (await runFanout(['inventory', 'import', join(net.dir, 'inventory-rate.yaml')], { env: net.env })).code,
    ).toBe(0);
    // No wait for the relay's refresh (every 10 s): a job's command makes it ask first.
    const dir = writePackage(join(net.dir, 'pkgs', 'big2'), 'big2', '1.0.0', {});
    writeFileSync(join(dir, 'blob.bin'), randomBytes(300 * 1024));
    await runFanout(['package', 'build', dir, '-o', `${dir}.tgz`]);
    const pushed = JSON.parse((await runFanout(['package', 'push', `${dir}.tgz`, '--json'], { env: net.env })).stdout);
    const job = await cli(['job', 'create', '--package', 'big2@1.0.0', '--label', 'role=pos']);
    await complete(job.jobId);
    const serving = servedKBps(job.jobId, pushed.size);
    console.log(`relay cap ${KBPS} KB/s from the inventory: serving ${serving.toFixed(0)} KB/s`);
    expect(Math.abs(serving - KBPS) / KBPS).toBeLessThan(0.15);
    // Back to no cap for the tests that follow.
    expect((await runFanout(['inventory', 'import', join(net.dir, 'inventory.yaml')], { env: net.env })).code).toBe(0);
  }, 90_000);
});

describe('an agent stopped in the middle of a download', () => {
  it('installs nothing, says why, and installs once it is back', async () => {
    const dir = writePackage(join(net.dir, 'pkgs', 'halfway'), 'halfway', '1.0.0', {});
    writeFileSync(join(dir, 'blob.bin'), randomBytes(200 * 1024));
    await runFanout(['package', 'build', dir, '-o', `${dir}.tgz`]);
    expect((await runFanout(['package', 'push', `${dir}.tgz`], { env: net.env })).code).toBe(0);
    const [agent] = AGENTS;
    const from = readFileSync(net.agents[agent].logFile, 'utf8').length;
    // 50 KB/s: about four seconds of download to stop the agent in.
    const job = await jobFor('halfway@1.0.0', agent, 'rateLimitKBps=50');
    await waitFor(
      'the download under way',
      async () => (await net.admin.get(`api/v1/jobs/${job.jobId}`)).targets[0].state === 'downloading',
      30_000,
      100,
    );
    await net.agents[agent].stop();
    const log = readFileSync(net.agents[agent].logFile, 'utf8').slice(from);
    expect(log).toMatch(/"why":"the agent stopped while it downloaded"/);
    expect(log).not.toMatch(/assignment failed/);
    expect(readdirSync(net.agents[agent].root).filter((n) => n.includes('halfway'))).toEqual([]);
    await net.startAgent(agent, RELAY);
    await complete(job.jobId);
    expect(readFileSync(join(net.agents[agent].root, 'halfway', 'current', 'blob.bin')).length).toBe(200 * 1024);
  }, 60_000);
});

describe('a slow download', () => {
  it('lets an urgent job and a verification go ahead; a job that is not urgent keeps its place behind it', async () => {
    const [agent] = AGENTS;
    const dir = writePackage(join(net.dir, 'pkgs', 'crawl'), 'crawl', '1.0.0', {});
    writeFileSync(join(dir, 'blob.bin'), randomBytes(600 * 1024));
    await runFanout(['package', 'build', dir, '-o', `${dir}.tgz`]);
    expect((await runFanout(['package', 'push', `${dir}.tgz`], { env: net.env })).code).toBe(0);
    await pushed(join(net.dir, 'pkgs', 'hotfix'), 'hotfix', '1.0.0', { 'v.txt': 'hotfix\n' });
    await pushed(join(net.dir, 'pkgs', 'queued'), 'queued', '1.0.0', { 'v.txt': 'queued\n' });
    // 50 KB/s: twelve seconds of download.
    const crawl = await jobFor('crawl@1.0.0', agent, 'rateLimitKBps=50');
    const target = async (jobId: string) => (await net.admin.get(`api/v1/jobs/${jobId}`)).targets[0];
    await waitFor(
      'the slow download under way',
      async () => (await target(crawl.jobId)).state === 'downloading',
      30_000,
      100,
    );
    const queued = await jobFor('queued@1.0.0', agent);
    const hotfix = await jobFor('hotfix@1.0.0', agent, 'ignoreWindows=true');
    await complete(hotfix.jobId);
    const verified = await cli(['device', 'verify', agent, '--timeout', '20']);
    expect(verified.devices.find((d: any) => d.package === 'hotfix')).toMatchObject({ id: agent, state: 'ok' });
    expect((await target(crawl.jobId)).state).toBe('downloading');
    expect((await target(queued.jobId)).state).not.toBe('installed');
    await complete(crawl.jobId);
    await complete(queued.jobId);
    // The job that was not urgent went after the slow one, as it was taken.
    const installing = (jobId: string) => Date.parse(journal(agent, jobId).find((e) => e.state === 'installing')!.at);
    expect(installing(queued.jobId)).toBeGreaterThanOrEqual(installing(crawl.jobId));
    expect(readFileSync(join(net.agents[agent].root, 'crawl', 'current', 'blob.bin')).length).toBe(600 * 1024);
    expect(readdirSync(net.agents[agent].root).filter((n) => n.startsWith('.staging-'))).toEqual([]);
  }, 90_000);
});

describe('uninstall', () => {
  it('removes a package from its targets after running its uninstall script', async () => {
    const dir = writePackage(join(net.dir, 'pkgs', 'tool'), 'tool', '1.0.0', {
      'tool.txt': 'tool\n',
      'uninstall.sh': '#!/bin/sh\necho "$FANOUT_PACKAGE $FANOUT_VERSION $FANOUT_JOB" > ../../tool-uninstalled.txt\n',
    });
    writeFileSync(
      join(dir, 'fanout.json'),
      JSON.stringify({ name: 'tool', version: '1.0.0', uninstall: { run: 'uninstall.sh', timeoutSec: 30 } }),
    );
    await runFanout(['package', 'build', dir, '-o', `${dir}.tgz`]);
    expect((await runFanout(['package', 'push', `${dir}.tgz`], { env: net.env })).code).toBe(0);
    const put = await cli(['job', 'create', '--package', 'tool@1.0.0', '--label', 'role=pos']);
    await complete(put.jobId);
    const [gone, stays] = AGENTS;
    const removal = await cli(['job', 'create', '--uninstall', 'tool', '--target', gone]);
    await complete(removal.jobId);
    expect(existsSync(join(net.agents[gone].root, 'tool'))).toBe(false);
    expect(readFileSync(join(net.agents[gone].root, 'tool-uninstalled.txt'), 'utf8')).toBe(
      `tool 1.0.0 ${removal.jobId}\n`,
    );
    expect(existsSync(join(net.agents[stays].root, 'tool', 'current', 'tool.txt'))).toBe(true);
    const fleet = await cli(['fleet', '--package', 'tool']);
    expect(fleet.devices.map((d: any) => d.id)).toEqual([stays]);
    // Asked again, there is nothing left to remove: done all the same.
    await complete((await cli(['job', 'create', '--uninstall', 'tool', '--target', gone])).jobId);
  });
});

describe('maintenance windows', () => {
  it('an endpoint downloads at once and installs only when its window opens; ignoreWindows installs now; a cancel stops one waiting', async () => {
    // A window for the site opening at the next minute boundary at least 30 s away, 5 minutes wide.
    const opens = Math.ceil((Date.now() + 30_000) / 60_000) * 60_000;
    const at = new Date(opens);
    const inv = inventoryYaml([RELAY], 2).replace(
      'centers:',
      `windows:\n  - { location: LOC-0, cron: "${at.getUTCMinutes()} ${at.getUTCHours()} * * *", duration: 5m, tz: UTC }\ncenters:`,
    );
    writeFileSync(join(net.dir, 'inventory-windows.yaml'), inv);
    const imp = await runFanout(['inventory', 'import', join(net.dir, 'inventory-windows.yaml')], { env: net.env });
    expect(imp.code, imp.stderr).toBe(0);
    // No wait for the relay's refresh (every 10 s): a job's command makes it ask first.
    for (const [name, v] of [
      ['app', '3.0.0'],
      ['late', '1.0.0'],
    ]) {
      await pushed(join(net.dir, 'pkgs', `${name}-${v}`), name, v, { 'v.txt': `${v}\n` });
    }
    const [held, urgent] = AGENTS;
    const job = await jobFor('app@3.0.0', held);
    const now = await jobFor('tool@1.0.0', urgent, 'ignoreWindows=true');
    await waitFor('the held target waiting for its window', async () => {
      const t = (await net.admin.get(`api/v1/jobs/${job.jobId}`)).targets[0];
      return t.state === 'waiting_window';
    });
    expect(Date.now()).toBeLessThan(opens);
    expect(existsSync(join(net.agents[held].root, 'app', '3.0.0'))).toBe(false);
    await complete(now.jobId); // ignoreWindows: installed outside the window
    // Cancelled while it waits for the window: when the window opens, the endpoint installs nothing.
    const late = await jobFor('late@1.0.0', urgent);
    await waitFor(
      'the late target waiting for its window',
      async () => (await net.admin.get(`api/v1/jobs/${late.jobId}`)).targets[0].state === 'waiting_window',
    );
    await cli(['job', 'cancel', late.jobId]);
    await waitFor(
      'the late job cancelled',
      async () => (await net.admin.get(`api/v1/jobs/${late.jobId}`)).state === 'failed',
    );
    // The agent goes on listening while it waits: it hears at once, and drops what it downloaded.
    const log = join(net.dir, 'logs', `${urgent}.log`);
    await waitFor('the late install stopped', async () => /"msg":"not installed"/.test(readFileSync(log, 'utf8')));
    expect(Date.now()).toBeLessThan(opens);
    expect(readFileSync(log, 'utf8')).toMatch(/"why":"the relay no longer offers it/);
    expect(readdirSync(net.agents[urgent].root).filter((n) => n.includes('late'))).toEqual([]);
    await waitFor(
      'the held target installed',
      async () => (await net.admin.get(`api/v1/jobs/${job.jobId}`)).state === 'complete',
      90_000,
      500,
    );
    expect(Date.now()).toBeGreaterThanOrEqual(opens);
    // The content was fetched ahead: downloading and waiting came before the window, installing inside it.
    const steps = journal(held, job.jobId);
    expect(steps.map((e) => e.state)).toEqual(['downloading', 'waiting_window', 'installing', 'installed']);
    expect(Date.parse(steps[1].at)).toBeLessThan(opens);
    expect(Date.parse(steps[2].at)).toBeGreaterThanOrEqual(opens);
    // The window has opened: the cancelled one still has nothing installed, and never said installing.
    expect(journal(urgent, late.jobId).map((e) => e.state)).toEqual(['downloading', 'waiting_window']);
    expect(existsSync(join(net.agents[urgent].root, 'late'))).toBe(false);
    expect((await net.admin.get(`api/v1/jobs/${late.jobId}`)).targets[0]).toMatchObject({
      state: 'failed',
      failureType: 'CANCELLED',
    });
    // A cancelled job stays cancelled: the relay plans no redistribution of it, and the master signs
    // its command for no longer. Before, it was a failed job like any other, offered to redistribute.
    const relay = net.relays[RELAY];
    const dry = await runFanout(['redistribute', '--data', relay.data, '--job', late.jobId, '--dry-run']);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toContain(
      `job ${late.jobId}: the job was cancelled by admin: a cancelled job is not redistributed; create a new job`,
    );
    const every = await runFanout(['redistribute', '--data', relay.data, '--dry-run', '--json']);
    expect(JSON.parse(every.stdout).plans.map((p: { jobId: string }) => p.jobId)).not.toContain(late.jobId);
    const [first] = readFileSync(join(relay.data, 'jobs', `${late.jobId}.jsonl`), 'utf8').split('\n');
    const asRelay = new Client({ baseUrl: net.master.url, token: net.tokens[RELAY] });
    await expect(asRelay.post(`api/v1/relay/commands/${JSON.parse(first).command.commandId}/renew`)).rejects.toThrow(
      /cancelled at .*a cancelled job is not signed again/,
    );
  }, 180_000);
  it('a window opened while an endpoint waits reaches it, and it installs; what went in meanwhile is checked again', async () => {
    const windowsAt = (cron: string) => {
      const file = join(net.dir, 'inventory-windows-2.yaml');
      writeFileSync(
        file,
        inventoryYaml([RELAY], 2).replace(
          'centers:',
          `windows:\n  - { location: LOC-0, cron: "${cron}", duration: 10m, tz: UTC }\ncenters:`,
        ),
      );
      return runFanout(['inventory', 'import', file], { env: net.env });
    };
    const later = new Date(Date.now() + 12 * 3_600_000);
    expect((await windowsAt(`${later.getUTCMinutes()} ${later.getUTCHours()} * * *`)).code).toBe(0);
    await pushed(join(net.dir, 'pkgs', 'soon-1.0.0'), 'soon', '1.0.0', { 'v.txt': '1\n' });
    // The command makes the relay ask the master for its devices again: the window far off is known.
    const job = await jobFor('soon@1.0.0', AGENTS[0]);
    await waitFor(
      'the target waiting for a window twelve hours off',
      async () => (await net.admin.get(`api/v1/jobs/${job.jobId}`)).targets[0].state === 'waiting_window',
    );
    // Meanwhile the endpoint is not stuck: a job that ignores windows installs, and a verification answers.
    await pushed(join(net.dir, 'pkgs', 'fix-1.0.0'), 'fix', '1.0.0', { 'v.txt': 'fix\n' });
    const fix = await jobFor('fix@1.0.0', AGENTS[0], 'ignoreWindows=true');
    await complete(fix.jobId);
    const verified = await cli(['device', 'verify', AGENTS[0], '--timeout', '20']);
    expect(verified.devices.find((d: any) => d.package === 'fix')).toMatchObject({ id: AGENTS[0], state: 'ok' });
    expect((await net.admin.get(`api/v1/jobs/${job.jobId}`)).targets[0].state).toBe('waiting_window');
    // Restarted while it waits: it installs nothing on its way out, and waits again once back.
    await net.agents[AGENTS[0]].stop();
    expect(existsSync(join(net.agents[AGENTS[0]].root, 'soon'))).toBe(false);
    await net.startAgent(AGENTS[0], RELAY);
    await waitFor('the restarted agent waiting again', async () =>
      /waiting for a maintenance window/.test(
        readFileSync(net.agents[AGENTS[0]].logFile, 'utf8').split('listening on').at(-1)!,
      ),
    );
    expect((await net.admin.get(`api/v1/jobs/${job.jobId}`)).targets[0].state).toBe('waiting_window');
    // A window open now: the master tells the relay at once, and the relay the waiting agent, which installs.
    expect((await windowsAt('* * * * *')).code).toBe(0);
    await complete(job.jobId);
    expect(readFileSync(join(net.agents[AGENTS[0]].root, 'soon', 'current', 'v.txt'), 'utf8')).toBe('1\n');

    // Waiting to go to 1.1.0 when an urgent 2.0.0 goes in: after its wait, 1.1.0 would go down.
    expect((await windowsAt(`${later.getUTCMinutes()} ${later.getUTCHours()} * * *`)).code).toBe(0);
    for (const v of ['1.1.0', '2.0.0'])
      await pushed(join(net.dir, 'pkgs', `soon-${v}`), 'soon', v, { 'v.txt': `${v}\n` });
    const minor = await jobFor('soon@1.1.0', AGENTS[0]);
    await waitFor(
      '1.1.0 waiting for its window',
      async () => (await net.admin.get(`api/v1/jobs/${minor.jobId}`)).targets[0].state === 'waiting_window',
    );
    const major = await jobFor('soon@2.0.0', AGENTS[0], 'ignoreWindows=true');
    await complete(major.jobId);
    expect((await windowsAt('* * * * *')).code).toBe(0);
    const refused = await waitFor('1.1.0 refused after its wait', async () => {
      const t = (await net.admin.get(`api/v1/jobs/${minor.jobId}`)).targets[0];
      return t.state === 'failed' && t;
    });
    expect(refused).toMatchObject({ failureType: 'DOWNGRADE_REFUSED' });
    expect(refused.error).toMatch(/soon@1\.1\.0 is lower than the installed 2\.0\.0/);
    expect(readFileSync(join(net.agents[AGENTS[0]].root, 'soon', 'current', 'v.txt'), 'utf8')).toBe('2.0.0\n');
  }, 90_000);
});
