// The relay's core, unit by unit with fakes: the fold, the job-log writer, the target state machine,
// the upstream's circuit breaker, the job table and the redistributor.
import { EventEmitter } from 'node:events';
import { appendFileSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Logger } from '../src/common/log.ts';
import { checkAssignment, signCommand } from '../src/protocol/command.ts';
import { generateSigningKey } from '../src/protocol/crypto.ts';
import { Assignment, type DistributionCommand, type Plan, type RelayReport } from '../src/protocol/types.ts';
import { AgentChannel } from '../src/relay/agent-channel.ts';
import { endAtDeadline } from '../src/relay/deadlines.ts';
import type { Depot } from '../src/relay/depot.ts';
import type { Distributor } from '../src/relay/distribution.ts';
import { JobLog, type JobLogRecord } from '../src/relay/joblog.ts';
import { RelayJobs } from '../src/relay/jobs.ts';
import { type MasterForPlans, offline } from '../src/relay/plan-master.ts';
import { Redistributor } from '../src/relay/redistributor.ts';
import type { Reporter } from '../src/relay/reporter.ts';
import { apply, type JobState, replay } from '../src/relay/state.ts';
import { agentStep, offer } from '../src/relay/targets.ts';
import { CircuitBreaker } from '../src/relay/upstream.ts';
import { tempDir } from './helpers.ts';

const at = '2026-11-26T10:00:00.000Z';
const pkg = { name: 'p', version: '1', digest: `sha256:${'a'.repeat(64)}`, size: 100, signature: 's' };
const key = generateSigningKey();
const unsigned: DistributionCommand = {
  commandId: 'c-1',
  seq: 1,
  jobId: 'j-1',
  relayId: 'r',
  kind: 'distribute',
  packages: [pkg],
  distributionList: ['e1', 'e2'],
  params: {},
  issuedAt: at,
  issuedBy: 'admin',
};
const command = signCommand(key.privatePem, unsigned, '2099-01-01T00:00:00.000Z');
const target = (
  deviceId: string,
  state: 'pending' | 'downloading' | 'installed' | 'failed',
  attempt = 1,
  commandId = 'c-1',
) => ({ type: 'target', at, deviceId, state, attempt, commandId }) as JobLogRecord;

/** A reporter that keeps what it would have sent. */
class FakeReporter {
  jobs: RelayReport['jobs'] = [];
  targets: RelayReport['targets'] = [];
  plans: Plan[] = [];
  alerts: Record<string, unknown>[] = [];
  job(j: RelayReport['jobs'][number]) {
    this.jobs.push(j);
  }
  target(t: RelayReport['targets'][number]) {
    this.targets.push(t);
  }
  plan(p: Plan) {
    this.plans.push(p);
  }
  alert(a: Record<string, unknown>) {
    this.alerts.push(a);
  }
}
const quietLog = { info() {}, warn() {}, error() {} } as unknown as Logger;
/** A disk that refuses job-log writes while `full` is true. */
const disk = { full: false, throwIf: (_p: string) => {} };
disk.throwIf = () => {
  if (disk.full) throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
};

describe('the fold: apply(state, record)', () => {
  it('moves a job from received through fetching and distributing to complete', () => {
    let st = apply(undefined, { type: 'command', at, command });
    expect(st).toMatchObject({ phase: 'received', jobId: 'j-1' });
    st = apply(st, { type: 'fetch', at, event: 'verified', digest: pkg.digest, bytes: 100 });
    expect(st?.phase).toBe('fetching');
    expect(st?.verified.has(pkg.digest)).toBe(true);
    st = apply(st, target('e1', 'installed'));
    expect(st?.phase).toBe('distributing');
    st = apply(st, target('e2', 'installed'));
    expect(st?.phase).toBe('complete');
  });

  it('a failed attempt followed by another offer keeps the job running; all ended with a failure is failed', () => {
    const log: JobLogRecord[] = [{ type: 'command', at, command }, target('e1', 'installed'), target('e2', 'failed')];
    expect(replay('j-1', log)?.phase).toBe('failed');
    expect(replay('j-1', [...log, target('e2', 'pending', 2)])?.phase).toBe('distributing');
  });

  it('a relay-level failure stands until a redistribution, which resets only its list', () => {
    const redo: DistributionCommand = {
      ...command,
      commandId: 'r-1',
      kind: 'redistribute',
      distributionList: ['e2'],
      repeats: 'c-1',
    };
    const log: JobLogRecord[] = [
      { type: 'command', at, command },
      target('e1', 'installed'),
      { type: 'failed', at, commandId: 'c-1', failureType: 'DISK_FULL', message: 'ENOSPC' },
      { ...target('e2', 'failed'), failureType: 'DISK_FULL' } as JobLogRecord,
      { type: 'redistribution', at, command: redo, planId: 'p-1', approvedBy: 'ops' },
    ];
    const st = replay('j-1', log)!;
    expect(st.phase).toBe('received');
    expect(st.failure).toBeUndefined();
    expect(st.targets.get('e1')?.state).toBe('installed');
    expect(st.targets.get('e2')).toMatchObject({ state: 'pending', attempt: 0 });
    expect(st.redistributions).toEqual([{ commandId: 'r-1', planId: 'p-1', approvedBy: 'ops', at, repeats: 'c-1' }]);
    // A failure record of the command it replaced no longer counts.
    expect(apply(st, { type: 'failed', at, commandId: 'c-1', failureType: 'DISK_FULL', message: 'x' })?.phase).toBe(
      'received',
    );
  });

  it('a second copy of the command (a retried acknowledgement) changes nothing', () => {
    const st = replay('j-1', [{ type: 'command', at, command }, target('e1', 'installed')])!;
    expect(apply(st, { type: 'command', at, command: { ...command, distributionList: ['x'] } })?.targets.has('x')).toBe(
      false,
    );
  });
});

describe('a job ends when every target of the command in force has ended', () => {
  it('kept by count as records apply: the same phase as looking at every target, through a redistribution', () => {
    const list = Array.from({ length: 30 }, (_, i) => `e${i}`);
    let x = 7;
    const rand = (n: number) => (x = (x * 1103515245 + 12345) % 2 ** 31) % n;
    const states = ['pending', 'downloading', 'installed', 'failed'] as const;
    let st = replay('j-1', [{ type: 'command', at, command: { ...command, distributionList: list } }])!;
    let current = list;
    for (let i = 0; i < 3000; i++) {
      if (i === 1500) {
        // A redistribution of a third of the list, part-way through.
        current = list.filter((_, k) => k % 3 === 0);
        const redo = { ...command, commandId: 'r-1', kind: 'redistribute' as const, distributionList: current };
        st = apply(st, { type: 'redistribution', at, command: redo, planId: 'p', approvedBy: 'ops' })!;
      }
      const d = list[rand(list.length)];
      st = apply(st, target(d, states[rand(4)], 1, st.current.commandId))!;
      const seen = current.map((e) => st.targets.get(e)!.state);
      const expected = seen.every((s) => s === 'installed' || s === 'failed')
        ? seen.includes('failed')
          ? 'failed'
          : 'complete'
        : 'distributing';
      expect(st.phase, `after record ${i}`).toBe(expected);
    }
  });
});

describe('the job log writer', () => {
  it('a refused write leaves the log as it was, and a torn last line is skipped on reading', () => {
    const dir = tempDir('joblog');
    const log = new JobLog(dir, disk);
    log.append('j-1', [{ type: 'command', at, command }]);
    const before = readFileSync(log.path('j-1'), 'utf8');
    disk.full = true;
    expect(() => log.append('j-1', [target('e1', 'installed')])).toThrow(/ENOSPC/);
    disk.full = false;
    expect(readFileSync(log.path('j-1'), 'utf8')).toBe(before);
    appendFileSync(log.path('j-1'), '{"type":"target","at":"2026');
    expect(log.read('j-1')).toHaveLength(1);
    expect(() => log.path('../etc/passwd')).toThrow(/not a job id/);
  });
});

describe('a job log with a torn last line (a power cut mid-write)', () => {
  it('is cut back to its last whole record before the next one is written, so that one is not lost', () => {
    const dir = tempDir('joblog');
    new JobLog(dir).append('j-1', [{ type: 'command', at, command }]);
    const whole = readFileSync(join(dir, 'jobs', 'j-1.jsonl'), 'utf8');
    appendFileSync(join(dir, 'jobs', 'j-1.jsonl'), '{"type":"target","at":"2026');
    // The relay starts again: its next record goes after the last whole one.
    const log = new JobLog(dir);
    log.append('j-1', [target('e1', 'installed')]);
    log.append('j-1', [target('e2', 'installed')]);
    expect(log.read('j-1').map((r) => (r.type === 'target' ? r.deviceId : r.type))).toEqual(['command', 'e1', 'e2']);
    expect(readFileSync(log.path('j-1'), 'utf8').startsWith(whole)).toBe(true);
    // A log that is all one torn line (its command never acknowledged) starts again from nothing.
    writeFileSync(join(dir, 'jobs', 'j-2.jsonl'), `{"type":"command","at":"${'x'.repeat(100_000)}`);
    new JobLog(dir).append('j-2', [{ type: 'command', at, command: { ...command, jobId: 'j-2' } }]);
    expect(new JobLog(dir).read('j-2')).toHaveLength(1);
  });
});

describe('reports written in one turn share one fsync', () => {
  it('synced() resolves once, for every record written with syncLater in that turn, across job logs', async () => {
    const log = new JobLog(tempDir('group-sync'));
    log.append('j-1', [{ type: 'command', at, command }]);
    log.append('j-2', [{ type: 'command', at, command: { ...command, jobId: 'j-2' } }]);
    log.append('j-1', [target('e1', 'downloading')], true);
    log.append('j-2', [target('e2', 'downloading')], true);
    const waits = [log.synced(), log.synced()];
    log.append('j-1', [target('e1', 'installed')], true); // the same turn: the same fsync
    await Promise.all(waits);
    expect(log.read('j-1').map((r) => (r.type === 'target' ? r.state : r.type))).toEqual([
      'command',
      'downloading',
      'installed',
    ]);
    expect(log.read('j-2')).toHaveLength(2);
    // Nothing left to sync: resolves at once.
    await log.synced();
  });
});

describe('the job log on a disk that fills mid-record', () => {
  it('cuts a partial write back off and throws: no torn record is ever read back', () => {
    const dir = tempDir('torn');
    let budget = Number.POSITIVE_INFINITY;
    // Writes at most `budget` bytes, then fails like a full disk.
    const filling = ((fd: number, buf: Buffer, off: number, len: number) => {
      if (budget <= 0) throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
      const n = Math.min(len, budget);
      budget -= n;
      return writeSync(fd, buf, off, n);
    }) as typeof writeSync;
    const log = new JobLog(dir, undefined, filling);
    log.append('j-1', [{ type: 'command', at, command }]);
    const before = readFileSync(log.path('j-1'), 'utf8');
    budget = 20; // the next record gets 20 bytes in, then the disk is full
    expect(() => log.append('j-1', [target('e1', 'installed'), target('e2', 'installed')])).toThrow(/ENOSPC/);
    expect(readFileSync(log.path('j-1'), 'utf8')).toBe(before);
    expect(log.read('j-1')).toHaveLength(1);
  });
});

describe('the target state machine', () => {
  const t = (state: 'pending' | 'downloading' | 'installing' | 'installed' | 'failed', attempt = 1) => ({
    state,
    attempt,
    at,
  });
  it('lets an agent move its target forward only, and never reopen an ended one', () => {
    expect(agentStep(t('pending'), 'downloading', 3)).toEqual({ kind: 'move', state: 'downloading' });
    expect(agentStep(t('installing'), 'downloading', 3).kind).toBe('ignore');
    expect(agentStep(t('installed'), 'failed', 3)).toMatchObject({
      kind: 'ignore',
      why: expect.stringMatching(/ended/),
    });
    expect(agentStep(t('downloading', 2), 'failed', 3)).toEqual({ kind: 'fail', retry: true });
    expect(agentStep(t('downloading', 3), 'failed', 3)).toEqual({ kind: 'fail', retry: false });
  });
  it('offers a target that was never offered, or failed, and nothing else', () => {
    expect(offer(t('pending', 0))).toEqual({ attempt: 1 });
    expect(offer(t('pending', 1))).toBeUndefined();
    expect(offer(t('failed', 2))).toEqual({ attempt: 3 });
    expect(offer(t('installed'))).toBeUndefined();
  });
});

describe('the upstream circuit breaker', () => {
  it('opens after three failures, cools down longer each time, and says offline and online once', () => {
    let now = 1000;
    const said: string[] = [];
    const log = { warn: (_o: unknown, m: string) => said.push(m), info: (_o: unknown, m: string) => said.push(m) };
    const b = new CircuitBreaker('http://master', log as never, {
      now: () => now,
      coolDownMs: 100,
      maxCoolDownMs: 300,
    });
    b.failure(new Error('ECONNREFUSED'));
    b.failure(new Error('ECONNREFUSED'));
    expect(b.waitMs()).toBe(0);
    b.failure(new Error('ECONNREFUSED'));
    expect(b.offline).toBe(true);
    expect(b.waitMs()).toBe(100);
    b.failure(new Error('ECONNREFUSED'));
    expect(b.waitMs()).toBe(200);
    b.failure(new Error('ECONNREFUSED'));
    b.failure(new Error('ECONNREFUSED'));
    expect(b.waitMs()).toBe(300); // capped
    now += 300;
    expect(b.waitMs()).toBe(0);
    b.success();
    expect(b.offline).toBe(false);
    expect(said).toEqual(['upstream offline; will keep trying', 'upstream online']);
  });
});

describe('the job table and the redistributor', () => {
  const setup = () => {
    const reporter = new FakeReporter();
    const dir = tempDir('jobs');
    const jobs = new RelayJobs(quietLog, new JobLog(dir, disk), reporter as unknown as Reporter);
    const started: string[] = [];
    const distributor = { start: (jobId: string) => started.push(jobId) } as unknown as Distributor;
    const depot = { has: () => true } as unknown as Depot;
    return { dir, reporter, jobs, started, redistributor: new Redistributor('r', jobs, distributor, depot) };
  };

  it('writes, folds and reports; a refused write fails the job as DISK_FULL and waits in the backlog', () => {
    const { dir, reporter, jobs } = setup();
    jobs.create([{ type: 'command', at, command }]);
    expect(jobs.record('j-1', [target('e1', 'pending'), target('e2', 'pending')])).toBe(true);
    expect(jobs.record('j-1', [target('e1', 'installed')])).toBe(true);
    expect(reporter.targets.at(-1)).toMatchObject({ deviceId: 'e1', state: 'installed' });
    disk.full = true;
    expect(jobs.record('j-1', [target('e2', 'downloading')])).toBe(false);
    disk.full = false;
    const st = jobs.get('j-1') as JobState;
    expect(st.phase).toBe('failed');
    expect(st.targets.get('e2')).toMatchObject({ state: 'failed', failureType: 'DISK_FULL' });
    expect(reporter.jobs.at(-1)).toMatchObject({ state: 'failed', failureType: 'DISK_FULL' });
    jobs.stop(); // writes the backlog
    const onDisk = replay('j-1', new JobLog(dir).read('j-1'))!;
    expect(onDisk.phase).toBe('failed');
    expect(onDisk.targets.get('e1')?.state).toBe('installed');
  });

  it('the redistributor is the only writer of plans: plan, approve, run; a stale approval is refused', async () => {
    const { jobs, redistributor, started, reporter } = setup();
    jobs.create([{ type: 'command', at, command }]);
    jobs.record('j-1', [
      target('e1', 'installed'),
      { ...target('e2', 'failed', 3), failureType: 'INSTALL_FAILED' } as JobLogRecord,
    ]);
    expect(jobs.get('j-1')?.phase).toBe('failed');
    const { plans } = await redistributor.plan('j-1');
    expect(plans).toHaveLength(1);
    expect(plans[0]).toMatchObject({ distributionList: ['e2'], state: 'pending', original: { installed: ['e1'] } });
    // Asking again returns the plan already waiting.
    expect((await redistributor.plan('j-1')).plans[0].planId).toBe(plans[0].planId);
    const approved = await redistributor.approve(plans[0].planId, 'ops');
    expect(approved).toMatchObject({ state: 'running', approvedBy: 'ops' });
    expect(started).toEqual(['j-1']);
    expect(jobs.get('j-1')?.current).toMatchObject({ kind: 'redistribute', repeats: 'c-1', distributionList: ['e2'] });
    await expect(redistributor.approve(plans[0].planId, 'ops')).rejects.toThrow(/running, not pending/);
    // The plan ends with its command.
    jobs.record('j-1', [target('e2', 'installed', 1, approved.commandId)]);
    expect(redistributor.list()[0].state).toBe('complete');
    expect(reporter.plans.at(-1)).toMatchObject({ planId: plans[0].planId, state: 'complete' });
  });

  it('a dry run leaves nothing; a plan still waiting when the job completes is superseded', async () => {
    const { jobs, redistributor } = setup();
    jobs.create([{ type: 'command', at, command }]);
    jobs.record('j-1', [
      target('e1', 'installed'),
      { ...target('e2', 'failed', 3), failureType: 'INSTALL_FAILED' } as JobLogRecord,
    ]);
    const dry = await redistributor.plan('j-1', { dryRun: true });
    expect(dry.plans).toHaveLength(1);
    expect(redistributor.list()).toEqual([]);
    const { plans } = await redistributor.plan('j-1');
    // The endpoint turns out to have installed it after all: the job completes, the plan is moot.
    jobs.record('j-1', [target('e2', 'pending', 4), target('e2', 'installed', 4)]);
    expect(redistributor.list().find((p) => p.planId === plans[0].planId)).toMatchObject({
      state: 'superseded',
      approvedBy: 'the job is complete',
    });
    await expect(redistributor.approve(plans[0].planId, 'ops')).rejects.toThrow(/superseded, not pending/);
  });

  it('a plan leaves out the targets a later job moved on to a newer version, unless something removed it since', async () => {
    const { jobs, redistributor } = setup();
    const job = (jobId: string, version: string | undefined, list: string[], params = {}) => {
      const c: DistributionCommand = {
        ...unsigned,
        jobId,
        commandId: `c-${jobId}`,
        packages: version ? [{ ...pkg, version }] : [],
        distributionList: list,
        params,
      };
      jobs.create([{ type: 'command', at, command: c }]);
      jobs.record(
        jobId,
        list.map((d) => target(d, 'installed', 1, c.commandId)),
      );
    };
    jobs.create([{ type: 'command', at, command: { ...command, distributionList: ['e1', 'e2', 'e3', 'e4'] } }]);
    jobs.record('j-1', [
      target('e1', 'installed'),
      ...['e2', 'e3', 'e4'].map((d) => ({ ...target(d, 'failed', 3), failureType: 'INSTALL_FAILED' }) as JobLogRecord),
    ]);
    job('j-2', '2', ['e2', 'e3']); // newer, at e2 and e3
    job('j-3', undefined, ['e3'], { uninstall: 'p' }); // then removed at e3
    job('j-4', '0.5', ['e4'], { allowDowngrade: true }); // an older one at e4
    expect(jobs.get('j-2')?.phase).toBe('complete');
    const { plans } = await redistributor.plan('j-1', { dryRun: true });
    expect(plans[0]).toMatchObject({
      distributionList: ['e3', 'e4'],
      original: { installed: ['e1'], movedOn: [{ deviceId: 'e2', why: 'job j-2 installed p@2 there since' }] },
    });
    // Every target not installed moved on: nothing to redistribute, and why.
    job('j-5', '3', ['e3', 'e4']);
    const none = await redistributor.plan('j-1', { dryRun: true });
    expect(none.plans).toEqual([]);
    expect(none.skipped[0].reason).toMatch(
      /every target not installed has moved on to a newer version \(e2: job j-2 .*; e3: job j-5 installed p@3 there since; e4: job j-5/,
    );
  });

  it("a later job's lost log does not stop a plan; the master's fleet record, while it answers, adds what it knows", async () => {
    const { dir, jobs, redistributor } = setup();
    jobs.create([{ type: 'command', at, command: { ...command, distributionList: ['e1', 'e2', 'e3'] } }]);
    jobs.record(
      'j-1',
      ['e1', 'e2', 'e3'].map((d) => ({ ...target(d, 'failed', 3), failureType: 'INSTALL_FAILED' }) as JobLogRecord),
    );
    const later: DistributionCommand = {
      ...unsigned,
      jobId: 'j-2',
      commandId: 'c-j-2',
      packages: [{ ...pkg, version: '2' }],
      distributionList: ['e1'],
    };
    jobs.create([{ type: 'command', at, command: later }]);
    jobs.record('j-2', [target('e1', 'installed', 1, later.commandId)]);
    expect((await redistributor.plan('j-1', { dryRun: true })).plans[0].distributionList).toEqual(['e2', 'e3']);

    // The relay starts again, knowing ended j-2 by its summary; then j-2's log is deleted by hand.
    // Before, the plan failed with that file's ENOENT.
    jobs.acknowledged(['j-2']);
    const again = new RelayJobs(quietLog, new JobLog(dir, disk), new FakeReporter() as unknown as Reporter);
    again.load();
    rmSync(new JobLog(dir, disk).path('j-2'));
    expect(again.summary('j-2')?.phase).toBe('complete');
    const distributor = { start: () => {} } as unknown as Distributor;
    const depot = { has: () => true } as unknown as Depot;
    const asked: string[] = [];
    const master = (answer: () => Promise<Map<string, string>>): MasterForPlans => ({
      ...offline,
      movedOn: (jobId) => {
        asked.push(jobId);
        return answer();
      },
    });
    const alone = await new Redistributor('r', again, distributor, depot).plan('j-1', { dryRun: true });
    expect(alone.plans[0].distributionList).toEqual(['e1', 'e2', 'e3']);
    // The master's record has e1 and e3 on newer versions (e3 through another relay).
    const fleet = new Map([
      ['e1', 'the fleet record has p@2'],
      ['e3', 'the fleet record has p@3'],
    ]);
    const withMaster = await new Redistributor(
      'r',
      again,
      distributor,
      depot,
      master(async () => fleet),
    ).plan('j-1', {
      dryRun: true,
    });
    expect(asked).toEqual(['j-1']);
    expect(withMaster.plans[0]).toMatchObject({
      distributionList: ['e2'],
      original: {
        movedOn: [
          { deviceId: 'e1', why: 'the fleet record has p@2' },
          { deviceId: 'e3', why: 'the fleet record has p@3' },
        ],
      },
    });
    // A master that does not answer: planned from the log alone, as before.
    const away = master(async () => {
      throw new Error('connect ECONNREFUSED');
    });
    const unanswered = await new Redistributor('r', again, distributor, depot, away).plan('j-1', { dryRun: true });
    expect(unanswered.plans[0].distributionList).toEqual(['e1', 'e2', 'e3']);
  });

  it('gives each open target its own assignment, as JSON an agent accepts, and none once it has ended', () => {
    const { jobs } = setup();
    const agents = new AgentChannel('r', jobs, new FakeReporter() as unknown as Reporter);
    jobs.create([{ type: 'command', at, command }]);
    jobs.record('j-1', [target('e1', 'pending'), target('e2', 'installed')]);
    (jobs.get('j-1') as JobState).phase = 'distributing';
    const [{ id, json }, ...more] = agents.assignmentsJson('e1');
    expect(more).toEqual([]);
    const a = Assignment.parse(JSON.parse(json));
    expect(id).toBe(a.assignmentId);
    expect(a).toMatchObject({ assignmentId: 'c-1/e1/1', jobId: 'j-1', commandId: 'c-1', attempt: 1, packages: [pkg] });
    expect(checkAssignment(a, 'e1', [key.publicPem])).toMatchObject({ ok: true });
    // The part all targets share is serialized once; each still carries its own proof.
    expect(checkAssignment(a, 'e2', [key.publicPem])).toMatchObject({ ok: false });
    expect(agents.assignmentsJson('e2')).toEqual([]);
    expect(agents.assignmentsJson('e3')).toEqual([]);
  });

  it("an endpoint that installed while the relay's disk was full counts as installed (the endpoint is the truth)", () => {
    const { dir, jobs } = setup();
    const reporter = new FakeReporter();
    const agents = new AgentChannel('r', jobs, reporter as unknown as Reporter);
    jobs.create([{ type: 'command', at, command }]);
    jobs.record('j-1', [target('e1', 'installed'), target('e2', 'pending')]);
    (jobs.get('j-1') as JobState).phase = 'distributing';
    disk.full = true;
    agents.report('e2', { jobId: 'j-1', commandId: 'c-1', state: 'installing' }); // refused by the disk: the job fails
    expect(jobs.get('j-1')).toMatchObject({ phase: 'failed', failure: { failureType: 'DISK_FULL' } });
    agents.report('e2', { jobId: 'j-1', commandId: 'c-1', state: 'installed' }); // …but the endpoint did install it
    disk.full = false;
    expect(jobs.get('j-1')?.targets.get('e2')?.state).toBe('installed');
    expect(jobs.get('j-1')?.phase).toBe('complete');
    jobs.stop(); // the backlog reaches the disk: the log says the same as memory
    const onDisk = replay('j-1', new JobLog(dir).read('j-1'))!;
    expect(onDisk.targets.get('e2')?.state).toBe('installed');
    expect(onDisk.phase).toBe('complete');
  });
  it('a cancel withdraws the open targets: their endpoints are woken, and a step toward installing is answered cancelled', async () => {
    const { jobs } = setup();
    const agents = new AgentChannel('r', jobs, new FakeReporter() as unknown as Reporter);
    jobs.create([{ type: 'command', at, command }]);
    jobs.record('j-1', [target('e1', 'installed'), target('e2', 'downloading')]);
    (jobs.get('j-1') as JobState).phase = 'distributing';
    expect(agents.assignmentsJson('e2').map((a) => a.id)).toEqual(['c-1/e2/1']);
    const woken = agents.nextOffer('e2', 60_000, new EventEmitter());
    jobs.fail('j-1', 'CANCELLED', 'the job was cancelled by olivia');
    await woken; // not after a minute: at once
    expect(agents.assignmentsJson('e2')).toEqual([]);
    for (const state of ['downloading', 'waiting_window', 'installing'] as const)
      expect(agents.report('e2', { jobId: 'j-1', commandId: 'c-1', state })).toEqual({
        cancelled: 'the job was cancelled by olivia',
      });
    // The endpoint's disk is still the truth: one that installed all the same counts.
    expect(agents.report('e2', { jobId: 'j-1', commandId: 'c-1', state: 'installed' })).toEqual({ ok: true });
    expect(jobs.get('j-1')?.targets.get('e2')?.state).toBe('installed');
  });

  it('a deadline while distributing withdraws the open targets at once too, and leaves the ended ones be', async () => {
    const { jobs } = setup();
    const agents = new AgentChannel('r', jobs, new FakeReporter() as unknown as Reporter);
    jobs.create([{ type: 'command', at, command }]);
    jobs.record('j-1', [target('e1', 'installed'), target('e2', 'downloading')]);
    (jobs.get('j-1') as JobState).phase = 'distributing';
    const woken = { e1: false, e2: false };
    const e1 = agents.nextOffer('e1', 60_000, new EventEmitter()).then(() => (woken.e1 = true));
    const e2 = agents.nextOffer('e2', 60_000, new EventEmitter()).then(() => (woken.e2 = true));
    endAtDeadline(jobs, jobs.get('j-1')!);
    await e2; // not after a minute: at once
    expect(woken).toEqual({ e1: false, e2: true });
    expect(jobs.get('j-1')?.failure).toBeUndefined(); // the targets ended, not the relay
    expect(jobs.get('j-1')?.targets.get('e2')).toMatchObject({ state: 'failed', failureType: 'DEADLINE' });
    expect(agents.assignmentsJson('e2')).toEqual([]);
    agents.offered('e1'); // let the other long-poll go
    await e1;
  });
});
