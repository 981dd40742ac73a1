// Attacks on the endpoints (DESIGN §12), against real daemons: a hostile relay that a real agent
// process talks to (key swap, injected parameters, traversal digest, a replayed expired command), an
// edited redistribution plan at a real relay, and a hostile agent forging alerts. Each is refused,
// nothing is installed, nothing is ticketed.

import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client } from '../src/protocol/client.ts';
import { authorityOf, signCommand } from '../src/protocol/command.ts';
import { generateSigningKey } from '../src/protocol/crypto.ts';
import { ListTree } from '../src/protocol/signing.ts';
import type { Assignment, DistributionCommand } from '../src/protocol/types.ts';
import { JobLog } from '../src/relay/joblog.ts';
import { type Network, type Proc, runFanout, startFanout, startNetwork, waitFor, writePackage } from './helpers.ts';

let net: Network;
const attacker = generateSigningKey();
const VICTIM = 'relay-a-pos-2';
const pwned = () => join(net.dir, 'pwned');

/** The attacker's relay: its own process (test/hostile-relay.ts), driven through its /control endpoints. */
class HostileRelay {
  proc!: ChildProcess;
  url = '';
  async start(logDir: string) {
    const ready = await spawnScript('hostile-relay', join(import.meta.dirname, 'hostile-relay.ts'), logDir);
    this.proc = ready.child;
    this.url = ready.url;
  }
  private control = (path: string, body?: unknown) =>
    fetch(`${this.url}/control/${path}`, {
      method: body ? 'POST' : 'GET',
      body: body ? JSON.stringify(body) : undefined,
    }).then((r) => r.json());
  setKey = (publicKey: string) => this.control('key', { publicKey });
  flood = () => this.control('flood');
  floodJson = () => this.control('flood-json');
  floodError = () => this.control('flood-error');
  calm = () => this.control('calm');
  sticky = () => this.control('sticky');
  queueAssignment = (a: Assignment) => this.control('queue', a);
  serve = (file: string, mode: 'cut' | 'flip') => this.control('serve', { file, mode });
  state = () =>
    this.control('state') as Promise<{
      reports: { state: string; failureType?: string; error?: string }[];
      contentRequests: number;
      assignmentRequests: number;
      ranges: string[];
    }>;
}

/** Starts `node --import tsx SCRIPT`, resolving on its "listening on URL" line. */
function spawnScript(name: string, script: string, logDir: string): Promise<{ child: ChildProcess; url: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout!.on('data', (c) => {
      out += c;
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) resolve({ child, url: m[1] });
    });
    child.once('exit', (code) => reject(new Error(`${name} exited (${code}) before it was ready; logs in ${logDir}`)));
  });
}

const hostile = new HostileRelay();
let victim: Proc;
let genuine: DistributionCommand;
let expired: DistributionCommand;

/** The victim's real agent process, talking to the hostile relay, from its own data folder. */
const startVictim = (name = 'victim', extra: string[] = []) =>
  startFanout(
    [
      'agent',
      '--relay',
      hostile.url,
      '--id',
      VICTIM,
      '--token-file',
      join(net.dir, 'tokens', `${VICTIM}.token`),
    ].concat(['--data', join(net.dir, name, 'data'), '--root', join(net.dir, name, 'root'), ...extra]),
    { logDir: join(net.dir, 'logs'), name, timeoutMs: 20_000 },
  );

const assignmentFrom = (cmd: DistributionCommand, over: Partial<Assignment>): Assignment => ({
  assignmentId: `x-${Math.random()}`,
  jobId: cmd.jobId,
  commandId: cmd.commandId,
  attempt: 1,
  kind: cmd.kind,
  packages: cmd.packages,
  params: cmd.params,
  authority: authorityOf(cmd)!,
  proof: new ListTree(cmd.distributionList).proof(VICTIM) ?? [],
  ...over,
});

/** Waits until the victim has asked the hostile relay for assignments `times` more times. */
async function asksAgain(times: number, what: string) {
  const before = (await hostile.state()).assignmentRequests;
  await waitFor(what, async () => (await hostile.state()).assignmentRequests >= before + times, 30_000);
}

async function refusedWith(a: Assignment, pattern: RegExp) {
  const before = (await hostile.state()).reports.length;
  await hostile.queueAssignment(a);
  const r = await waitFor(
    'the agent to refuse the assignment',
    async () => (await hostile.state()).reports.slice(before).find((x) => x.state === 'failed'),
    15_000,
  );
  expect(r.error).toMatch(pattern);
  const after = (await hostile.state()).reports.slice(before);
  expect(after.some((x) => x.state === 'downloading' || x.state === 'installed')).toBe(false);
  return r;
}

beforeAll(async () => {
  net = await startNetwork({ name: 'hostile', relays: ['relay-a'], agentsPerRelay: 2 });
  await net.agents[VICTIM].stop(); // the victim's genuine agent pinned the key; it now talks to the attacker
  const dir = writePackage(join(net.dir, 'pkgs', 'pos-app'), 'pos-app', '1.0.0', { 'a.txt': 'a\n' });
  expect((await runFanout(['package', 'build', dir, '-o', `${dir}.tgz`])).code).toBe(0);
  expect((await runFanout(['package', 'push', `${dir}.tgz`], { env: net.env })).code).toBe(0);
  // Genuine signed commands for the victim, as the real relay holds them in its job log.
  const commandOf = async (params: string[]) => {
    const c = await runFanout(
      ['job', 'create', '--package', 'pos-app@1.0.0', '--target', VICTIM, ...params, '--json'],
      { env: net.env },
    );
    const { jobId } = JSON.parse(c.stdout);
    const log = new JobLog(net.relays['relay-a'].data);
    // The file may exist a moment before its first record is in it.
    return waitFor(
      'the command in the relay job log',
      async () => log.exists(jobId) && (log.read(jobId)[0] as { command?: DistributionCommand } | undefined)?.command,
    );
  };
  genuine = await commandOf([]);
  expired = await commandOf(['--param', 'deadline=2s']);
  await hostile.start(join(net.dir, 'logs'));
  await hostile.setKey(readFileSync(join(net.agents[VICTIM].data, 'master.pub'), 'utf8'));
  victim = await startVictim();
});
afterAll(async () => {
  await victim?.stop();
  hostile.proc?.kill();
  await net?.stopAll();
});

describe('a hostile relay cannot make an endpoint run anything the master did not sign', () => {
  it('refuses a genuine package with an injected preCommand', async () => {
    await refusedWith(
      assignmentFrom(genuine, { params: { ...genuine.params, preCommand: `touch ${pwned()}` } }),
      /differ from what the master signed/,
    );
  });

  it('refuses a whole command signed by another key', async () => {
    const forged = signCommand(
      attacker.privatePem,
      { ...genuine, params: { preCommand: `touch ${pwned()}` } },
      '2099-01-01T00:00:00.000Z',
    );
    await refusedWith(assignmentFrom(forged, {}), /not signed by the master's key/);
  });

  it('refuses a traversal digest before making a path of it', async () => {
    const evil = { ...genuine.packages[0], digest: 'sha256:../../../../etc/passwd' };
    const header = { ...authorityOf(genuine)!.header, packages: [evil] };
    await refusedWith(
      assignmentFrom(genuine, { packages: [evil], authority: { header, signature: genuine.signature! } }),
      /no well-formed signed command header/,
    );
  });

  it('refuses a genuine command without a proof that this device is on its list', async () => {
    await refusedWith(
      assignmentFrom(genuine, { proof: ['0'.repeat(64)] }),
      /relay-a-pos-2 is not on the distribution list/,
    );
  });

  it('refuses a replayed command that has expired', async () => {
    await waitFor(
      'the deadline-2s command to expire',
      async () => Date.parse(expired.expiresAt!) < Date.now() - 500,
      10_000,
    );
    const r = await refusedWith(assignmentFrom(expired, {}), /expired/);
    expect(r.failureType).toBe('EXPIRED');
  });

  it('a swapped master key stops the agent at enrollment', async () => {
    await victim.stop();
    await hostile.setKey(attacker.publicPem);
    await expect(startVictim()).rejects.toThrow(/master's key changed .*FANOUT_ERR_KEY_CHANGED/);
    // A fresh agent pinned with --master-key refuses the attacker's key at its first enrollment, too.
    const keys = await net.admin.get<{ fingerprint: string }>('api/v1/keys');
    const fresh = startVictim('fresh', ['--master-key', keys.fingerprint]);
    await expect(fresh).rejects.toThrow(/as --master-key says/);
  });

  it('after all of it: nothing installed, nothing fetched, nothing run', async () => {
    expect(existsSync(pwned())).toBe(false);
    expect((await hostile.state()).contentRequests).toBe(0);
    const root = join(net.dir, 'victim', 'root');
    expect(existsSync(root) ? readdirSync(root) : []).toEqual([]);
  });
});

describe("a hostile relay cannot fill an endpoint's disk", () => {
  it('stops a download at the signed size, keeps nothing of it, and installs nothing', async () => {
    // The victim again, with the master's genuine key, now fed an endless body for genuine content.
    await hostile.setKey(readFileSync(join(net.agents[VICTIM].data, 'master.pub'), 'utf8'));
    victim = await startVictim();
    await hostile.flood();
    const before = (await hostile.state()).reports.length;
    await hostile.queueAssignment(assignmentFrom(genuine, {}));
    const r = await waitFor(
      'the agent to give up the download',
      async () => (await hostile.state()).reports.slice(before).find((x) => x.state === 'failed'),
      30_000,
    );
    expect(r).toMatchObject({ failureType: 'DIGEST_MISMATCH', error: expect.stringMatching(/more than the signed/) });
    // Nothing of it is kept: the staging folder it was unpacked into is gone with it.
    const root = join(net.dir, 'victim', 'root');
    expect(existsSync(root) ? readdirSync(root) : []).toEqual([]);
  });
});

describe("a hostile relay cannot fill an endpoint's memory", () => {
  it('cuts off an endless JSON answer at 4 MiB, refuses it, and keeps polling', async () => {
    await hostile.floodJson();
    // Refused, then asked again after a pause, again and again: the agent lives through it.
    await asksAgain(3, 'the agent to ask three more times');
    expect(victim.child.exitCode).toBe(null);
    const rssMb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${victim.child.pid}/status`, 'utf8'))?.[1]) / 1024;
    expect(rssMb).toBeLessThan(200);
    expect(readFileSync(victim.logFile, 'utf8')).toMatch(/answered more than 4194304 bytes; refused/);
    await hostile.calm();
    await asksAgain(2, 'the agent to poll as usual');
    expect(victim.child.exitCode).toBe(null);
  });
});

describe('a hostile relay cannot hold an endpoint on one answer', () => {
  it('cuts off an error whose message never ends, and keeps polling', async () => {
    await hostile.floodError();
    await asksAgain(3, 'the agent to ask three more times');
    expect(victim.child.exitCode).toBe(null);
    await hostile.calm();
  });
});

describe('a relay that answers at once with nothing new is not asked again at once', () => {
  it('spaces its questions out, doubling the pause up to a long-poll', async () => {
    await hostile.sticky(); // lists the assignment for ever, refuses every report
    const before = await hostile.state();
    await hostile.queueAssignment(assignmentFrom(genuine, { proof: [] })); // refused by the agent: done with it
    await waitFor('the refusal reported', async () => (await hostile.state()).reports.length > before.reports.length);
    const asked = (await hostile.state()).assignmentRequests;
    await new Promise((r) => setTimeout(r, 7000));
    // Pauses of 1, 2 and 4 s: at most 4 more questions in 7 s (an agent that paused 500 ms asked 14).
    expect((await hostile.state()).assignmentRequests - asked).toBeLessThanOrEqual(4);
    expect(victim.child.exitCode).toBe(null);
    await hostile.calm();
    await asksAgain(2, 'the agent to poll as usual');
  });
});

describe('a download is unpacked as it arrives, and used only once it is whole and verified', () => {
  const archive = () => join(net.dir, 'pkgs', 'pos-app.tgz');
  const reportsAfter = async (before: number, state: string) =>
    waitFor(
      `the agent to report ${state}`,
      async () => (await hostile.state()).reports.slice(before).find((x) => x.state === state),
      30_000,
    );

  it('refuses genuine content with one byte changed at its end, and leaves nothing of what it unpacked', async () => {
    await hostile.serve(archive(), 'flip');
    const before = (await hostile.state()).reports.length;
    await hostile.queueAssignment(assignmentFrom(genuine, {}));
    const r = await reportsAfter(before, 'failed');
    expect(r).toMatchObject({ failureType: 'DIGEST_MISMATCH', error: expect.stringMatching(/digest mismatch/) });
    const root = join(net.dir, 'victim', 'root');
    expect(existsSync(root) ? readdirSync(root) : []).toEqual([]);
  });

  it('resumes a download cut in the middle, from a relay that then ignores the range, and installs it', async () => {
    await hostile.serve(archive(), 'cut');
    const before = await hostile.state();
    await hostile.queueAssignment(assignmentFrom(genuine, {}));
    await reportsAfter(before.reports.length, 'installed');
    const ranges = (await hostile.state()).ranges.slice(before.ranges.length);
    expect(ranges[0]).toBe('');
    expect(ranges[1]).toMatch(/^bytes=\d+-$/);
    const root = join(net.dir, 'victim', 'root');
    expect(readFileSync(join(root, 'pos-app', 'current', 'a.txt'), 'utf8')).toBe('a\n');
    expect(readdirSync(root).filter((f) => f.startsWith('.staging'))).toEqual([]);
    await hostile.calm();
  });
});

describe('a relay takes only a plan it recorded, unchanged', () => {
  it('refuses an edited redistribution plan through its admin API and writes nothing', async () => {
    const relay = net.relays['relay-a'];
    const relayAdmin = new Client({
      baseUrl: relay.url,
      token: readFileSync(join(relay.data, 'admin.token'), 'utf8').trim(),
    });
    await relayAdmin.post('admin/v1/faults', { 'relay.depot.write': 'ENOSPC' });
    const dir = writePackage(join(net.dir, 'pkgs', 'pos-app-2'), 'pos-app', '2.0.0', { 'a.txt': 'b\n' });
    await runFanout(['package', 'build', dir, '-o', `${dir}.tgz`]);
    await runFanout(['package', 'push', `${dir}.tgz`], { env: net.env });
    const c = await runFanout(['job', 'create', '--package', 'pos-app@2.0.0', '--target', 'relay-a-pos-1', '--json'], {
      env: net.env,
    });
    const { jobId } = JSON.parse(c.stdout);
    await waitFor('the job to fail', async () => (await net.admin.get(`api/v1/jobs/${jobId}`)).state === 'failed');
    await relayAdmin.json('DELETE', 'admin/v1/faults');
    const { plans } = await relayAdmin.post('admin/v1/redistribute/plans', { jobId });
    const log = readFileSync(join(relay.data, 'jobs', `${jobId}.jsonl`), 'utf8');
    for (const edit of [
      { params: { ...plans[0].params, preCommand: `touch ${pwned()}` } },
      { distributionList: [...plans[0].distributionList, 'relay-a-pos-2'] },
      { packages: [{ ...plans[0].packages[0], version: '9.9.9' }] },
    ]) {
      const r = await fetch(`${relay.url}/admin/v1/redistribute/submit`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${readFileSync(join(relay.data, 'admin.token'), 'utf8').trim()}`,
          'content-type': 'application/json',
        },
        body: JSON.stringify({ plan: { ...plans[0], ...edit }, approvedBy: 'mallory' }),
      });
      expect(r.status).toBe(403);
      expect((await r.json()).error).toMatchObject({
        code: 'FANOUT_ERR_COMMAND_REFUSED',
        message: expect.stringMatching(/differs from the one relay relay-a recorded/),
      });
    }
    expect(readFileSync(join(relay.data, 'jobs', `${jobId}.jsonl`), 'utf8')).toBe(log);
  });
});

describe('a hostile agent cannot forge alerts', () => {
  it('an endpoint token speaks only about its own device, as itself', async () => {
    const asAgent = new Client({ baseUrl: net.master.url, token: net.tokens['relay-a-pos-1'] });
    for (const forged of [
      { source: 'master', deviceId: 'relay-a', failureType: 'DISK_FULL', jobId: 'j-x', message: 'ENOSPC' },
      { deviceId: 'relay-a-pos-2', failureType: 'DISK_FULL', message: 'ENOSPC' },
    ]) {
      const err = await asAgent.post('api/v1/alerts', forged).catch((e) => e);
      expect(err.status).toBe(403);
      expect(err.message).toMatch(/relay-a-pos-1 may send alerts about itself only/);
    }
    // Claiming the relay's predictable alert id, or the master as source, changes nothing: the source is the token's device.
    const r = await asAgent.post('api/v1/alerts', {
      source: 'master',
      alertId: `${genuine.jobId}/${genuine.commandId}/failed`,
      deviceId: 'relay-a-pos-1',
      message: 'hello',
    });
    const stored = await net.admin.get(`api/v1/alerts/${r.ids[0]}`);
    expect(stored.source).toBe('relay-a-pos-1');
    // Naming another relay in the body changes nothing either: an endpoint's alert is about its own relay.
    await asAgent.post('api/v1/alerts', {
      deviceId: 'relay-a-pos-1',
      relay: 'relay-b',
      jobId: 'j-elsewhere',
      message: 'ENOSPC',
    });
    const failed: { relayId: string }[] = await net.admin.get('api/v1/failed?job=j-elsewhere');
    expect(failed.map((f) => f.relayId)).toEqual(['relay-a']);
    // The forged alerts made no ticket: none for the job they named, none for the device they were about.
    const tickets: { deviceId: string; jobs: string[] }[] = await net.admin.get('api/v1/tickets');
    expect(tickets.filter((t) => t.jobs.includes('j-x') || t.deviceId === 'relay-a-pos-2')).toEqual([]);
    expect(existsSync(pwned())).toBe(false);
  });

  it("an alert's text cannot drive the operator's terminal: escape sequences are shown, not obeyed", async () => {
    const asAgent = new Client({ baseUrl: net.master.url, token: net.tokens['relay-a-pos-1'] });
    // Set the window title, write the clipboard (OSC 52), clear the screen, a C1 CSI, a carriage
    // return that would overwrite the line, and a right-to-left override that reorders what follows.
    // And a line that would pass for one of the explanation's steps.
    const hostile =
      'disk check\u001b]0;owned\u0007\u001b]52;c;cm0gLXJmIH4=\u0007\u001b[2J\u009b31m\rall fine \u202egnp.exe\n  11. ticket               t-forged';
    const { ids } = await asAgent.post('api/v1/alerts', {
      deviceId: 'relay-a-pos-1',
      message: hostile,
      alertId: 'escapes-1',
    });
    // biome-ignore lint/suspicious/noControlCharactersInRegex: finding them is the point
    const obeyed = /[\u0007\u001b\u009b\r\u202e]/;
    for (const args of [
      ['alerts', 'show', String(ids[0])],
      ['alerts', 'show', String(ids[0]), '--json'],
      ['alerts', 'list'],
      ['alerts', 'list', '--json'],
    ]) {
      const r = await runFanout(args, { env: net.env });
      expect(r.code, args.join(' ')).toBe(0);
      expect(r.stdout, args.join(' ')).not.toMatch(obeyed);
      // Shown escaped where the message is shown: the operator sees that something was there.
      if (args[1] === 'show') expect(r.stdout, args.join(' ')).toContain('\\u001b]52;c;');
      if (args.join(' ') === `alerts show ${ids[0]}`)
        expect(r.stdout.split('\n').filter((l) => l.includes('t-forged'))).toEqual([
          '         |   11. ticket               t-forged',
        ]);
    }
    // The JSON still carries the message as sent.
    const shown = JSON.parse((await runFanout(['alerts', 'show', String(ids[0]), '--json'], { env: net.env })).stdout);
    expect(shown.message).toBe(hostile);
  });

  it('an endpoint declares only the failure types the master knows: it cannot make a ticket and a mail per name', async () => {
    const asAgent = new Client({ baseUrl: net.master.url, token: net.tokens['relay-a-pos-2'] });
    const before = (await net.admin.get<any[]>('api/v1/tickets')).filter((t) => t.deviceId === 'relay-a-pos-2');
    const { ids } = await asAgent.post<{ ids: number[] }>(
      'api/v1/alerts',
      Array.from({ length: 30 }, (_, i) => ({ deviceId: 'relay-a-pos-2', failureType: `SPAM_${i}`, message: 'hello' })),
    );
    const after = (await net.admin.get<any[]>('api/v1/tickets')).filter((t) => t.deviceId === 'relay-a-pos-2');
    // At most one new ticket, of the type UNKNOWN, however many names were sent.
    expect(after.length - before.length).toBeLessThanOrEqual(1);
    expect(after.filter((t) => t.failureType.startsWith('SPAM_'))).toEqual([]);
    const shown = await net.admin.get<any>(`api/v1/alerts/${ids[7]}`);
    expect(shown.failureType).toBe('UNKNOWN');
    expect(shown.steps.find((s: any) => s.step === 'classify').detail).toMatch(
      /the device declared SPAM_7, not a type this master knows/,
    );
    // A type of ours it may declare, and an admin token (a monitoring system) any type.
    const ours = await asAgent.post<{ ids: number[] }>('api/v1/alerts', {
      deviceId: 'relay-a-pos-2',
      failureType: 'INSTALL_FAILED',
      message: 'exit 3',
    });
    expect((await net.admin.get<any>(`api/v1/alerts/${ours.ids[0]}`)).failureType).toBe('INSTALL_FAILED');
    const theirs = await net.admin.post<{ ids: number[] }>('api/v1/alerts', {
      deviceId: 'relay-a-pos-2',
      failureType: 'PRINTER_JAM',
      message: 'paper',
    });
    expect((await net.admin.get<any>(`api/v1/alerts/${theirs.ids[0]}`)).failureType).toBe('PRINTER_JAM');
  });

  it('a relay token speaks for itself and its endpoints only', async () => {
    const asRelay = new Client({ baseUrl: net.master.url, token: net.tokens['relay-a'] });
    await asRelay.post('api/v1/alerts', { deviceId: 'relay-a-pos-1', message: 'probe', alertId: 'ok-1' });
    const err = await asRelay.post('api/v1/alerts', { deviceId: 'some-other-relay', message: 'x' }).catch((e) => e);
    expect(err.status).toBe(403);
  });
});
