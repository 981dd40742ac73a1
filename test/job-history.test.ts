// A relay's job history: ended jobs are held as summaries and read back from their logs on demand;
// once the master has acknowledged all of an ended job, the next start takes its summary file
// instead of replaying its log, and does not report it again.
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Logger } from '../src/common/log.ts';
import type { Client } from '../src/protocol/client.ts';
import type { DistributionCommand, Plan, RelayReport } from '../src/protocol/types.ts';
import { AgentChannel } from '../src/relay/agent-channel.ts';
import { deviceFilter, mayContain } from '../src/relay/device-filter.ts';
import { JobLog, type JobLogRecord } from '../src/relay/joblog.ts';
import { RelayJobs } from '../src/relay/jobs.ts';
import { Reporter } from '../src/relay/reporter.ts';
import { replay } from '../src/relay/state.ts';
import { Verifications } from '../src/relay/verifications.ts';
import { tempDir } from './helpers.ts';

const at = '2026-11-27T10:00:00.000Z';
const pkg = { name: 'p', version: '1', digest: `sha256:${'a'.repeat(64)}`, size: 100, signature: 's' };
const command = (jobId: string, list: string[]): DistributionCommand => ({
  commandId: `c-${jobId}`,
  seq: 1,
  jobId,
  relayId: 'r',
  kind: 'distribute',
  packages: [pkg],
  distributionList: list,
  params: {},
  issuedAt: at,
  issuedBy: 'admin',
});
const target = (jobId: string, deviceId: string, state: 'installed' | 'failed' | 'downloading') =>
  ({ type: 'target', at, deviceId, state, attempt: 1, commandId: `c-${jobId}` }) as JobLogRecord;
const quiet = { info() {}, warn() {}, error() {} } as unknown as Logger;

/** Keeps what it would have sent; `deliver` plays the master acknowledging it all. */
class FakeReporter {
  reports: unknown[] = [];
  onDelivered?: (jobIds: string[]) => void;
  job(j: RelayReport['jobs'][number]) {
    this.reports.push(j);
  }
  target(t: RelayReport['targets'][number]) {
    this.reports.push(t);
  }
  plan(p: Plan) {
    this.reports.push(p);
  }
  alert(a: Record<string, unknown>) {
    this.reports.push(a);
  }
  verification(v: unknown) {
    this.reports.push(v);
  }
  deliver(jobIds: string[]) {
    this.reports = [];
    this.onDelivered?.(jobIds);
  }
}

/** A job log that counts the logs it reads whole. */
class CountingLog extends JobLog {
  reads: string[] = [];
  override read(jobId: string) {
    this.reads.push(jobId);
    return super.read(jobId);
  }
}

const devices = (n: number) => Array.from({ length: n }, (_, i) => `e${i}`);

/** `n` jobs of 20 targets each, run to their end: the odd ones with a failed target. */
function history(dir: string, n: number) {
  const reporter = new FakeReporter();
  const log = new CountingLog(dir);
  const jobs = new RelayJobs(quiet, log, reporter as unknown as Reporter);
  for (let j = 0; j < n; j++) {
    const id = `j-${j}`;
    jobs.create([{ type: 'command', at, command: command(id, devices(20)) }]);
    jobs.record(
      id,
      devices(20).map((d, i) => target(id, d, j % 2 && i === 7 ? 'failed' : 'installed')),
    );
  }
  return { reporter, log, jobs };
}

describe('a relay’s job history', () => {
  it('holds ended jobs as summaries, reads one back whole from its log when asked, and keeps only the last few', () => {
    const dir = tempDir('history');
    const { jobs, log } = history(dir, 10);
    expect([...jobs.open()]).toEqual([]);
    expect(jobs.summaries().map((s) => [s.jobId, s.phase, s.installed, s.failed])).toEqual(
      Array.from({ length: 10 }, (_, j) => [`j-${j}`, j % 2 ? 'failed' : 'complete', j % 2 ? 19 : 20, j % 2]),
    );
    // The last four that ended are still whole; the six before them are read back from their logs.
    log.reads = [];
    for (let j = 9; j >= 0; j--)
      expect(jobs.get(`j-${j}`)?.targets.get('e7')?.state).toBe(j % 2 ? 'failed' : 'installed');
    expect(log.reads).toEqual(['j-5', 'j-4', 'j-3', 'j-2', 'j-1', 'j-0']);
    // A read-back job takes records as a held one does: a late install completes j-1.
    jobs.record('j-1', [{ ...target('j-1', 'e7', 'installed'), attempt: 2 } as JobLogRecord]);
    expect(jobs.summary('j-1')).toMatchObject({ phase: 'complete', installed: 20, failed: 0 });
    expect(replay('j-1', new JobLog(dir).read('j-1'))?.phase).toBe('complete');
    expect(jobs.get('nope')).toBeUndefined();
  });

  it('takes an acknowledged ended job from its summary file at the next start, and reports it no more', () => {
    const dir = tempDir('history');
    const first = history(dir, 6);
    // One job still runs: it is never summarized, and always replayed and reported.
    first.jobs.create([{ type: 'command', at, command: command('j-open', ['a', 'b']) }]);
    first.jobs.record('j-open', [target('j-open', 'a', 'downloading')]);
    first.reporter.deliver(['j-0', 'j-1', 'j-2', 'j-3', 'j-4', 'j-open']);
    const files = readdirSync(join(dir, 'jobs')).filter((f) => f.endsWith('.summary.json'));
    expect(files.sort()).toEqual(['j-0', 'j-1', 'j-2', 'j-3', 'j-4'].map((j) => `${j}.summary.json`));

    // A damaged summary file counts as none.
    const damaged = join(dir, 'jobs', 'j-2.summary.json');
    const f = JSON.parse(readFileSync(damaged, 'utf8'));
    writeFileSync(damaged, JSON.stringify({ ...f, summary: { ...f.summary, plans: null } }));

    const again = new FakeReporter();
    const log = new CountingLog(dir);
    const jobs = new RelayJobs(quiet, log, again as unknown as Reporter);
    const replayed = jobs.load();
    // j-5 ended but the master never acknowledged it: replayed and reported with the running job.
    expect(replayed.map((s) => s.jobId)).toEqual(['j-2', 'j-5', 'j-open']);
    expect(log.reads).toEqual(['j-2', 'j-5', 'j-open']);
    // j-2 and j-5: each its state and its 20 targets; j-open: its state and its 2.
    expect(again.reports).toHaveLength(21 + 21 + 3);
    expect(new Set(again.reports.map((r) => (r as { jobId: string }).jobId))).toEqual(
      new Set(['j-2', 'j-5', 'j-open']),
    );
    expect(jobs.summaries().map((s) => s.jobId)).toEqual(['j-0', 'j-1', 'j-2', 'j-3', 'j-4', 'j-5', 'j-open']);
    expect(jobs.summary('j-3')).toEqual(first.jobs.summary('j-3'));
    expect([...jobs.open()].map((st) => st.jobId)).toEqual(['j-open']);
    // Still whole on demand, from the log.
    expect(jobs.get('j-3')?.targets.get('e7')).toMatchObject({ state: 'failed' });
  });

  it('a record after the acknowledgement makes the summary stale: that job is replayed and reported again', () => {
    const dir = tempDir('history');
    const first = history(dir, 2);
    first.reporter.deliver(['j-0', 'j-1']);
    // An operator's plan for the failed job, written after the master acknowledged its end.
    const plan = { planId: 'p-1', jobId: 'j-1', state: 'pending' } as unknown as Plan;
    first.jobs.record('j-1', [{ type: 'plan', at, plan }]);
    const again = new FakeReporter();
    const log = new CountingLog(dir);
    const jobs = new RelayJobs(quiet, log, again as unknown as Reporter);
    expect(jobs.load().map((s) => s.jobId)).toEqual(['j-1']);
    expect(again.reports).toContainEqual(plan);
    expect(jobs.summary('j-1')?.plans).toEqual([plan]);
    // Once the master has the plan too, the summary stands for the longer log.
    again.deliver(['j-1']);
    const third = new CountingLog(dir);
    new RelayJobs(quiet, third, new FakeReporter() as unknown as Reporter).load();
    expect(third.reads).toEqual([]);
  });

  it('writes no summary for a job whose records wait in the backlog of a full disk', () => {
    const dir = tempDir('history');
    const disk = { full: false, throwIf: () => {} };
    disk.throwIf = () => {
      if (disk.full) throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
    };
    const reporter = new FakeReporter();
    const jobs = new RelayJobs(quiet, new JobLog(dir, disk), reporter as unknown as Reporter);
    jobs.create([{ type: 'command', at, command: command('j-0', ['a', 'b']) }]);
    disk.full = true;
    jobs.record('j-0', [target('j-0', 'a', 'installed')]);
    expect(jobs.summary('j-0')?.phase).toBe('failed');
    reporter.deliver(['j-0']);
    expect(existsSync(join(dir, 'jobs', 'j-0.summary.json'))).toBe(false);
    // The backlog's records are part of the job when it is read back.
    expect(jobs.get('j-0')?.targets.get('a')?.state).toBe('installed');
    disk.full = false;
    jobs.stop();
  });
});

describe('late reports for ended jobs', () => {
  it('reads a job back only for what can change it: an endpoint it failed that installed after all', async () => {
    const dir = tempDir('history');
    const { jobs, reporter, log } = history(dir, 10);
    const agents = new AgentChannel('r', jobs, reporter as unknown as Reporter);
    log.reads = [];
    const late = (jobId: string, deviceId: string, state: 'installed' | 'downloading' | 'failed') =>
      agents.report(deviceId, { jobId, commandId: `c-${jobId}`, state });
    // Complete jobs, and anything but `installed`: answered as ignored, no log read.
    expect(late('j-0', 'e3', 'downloading')).toEqual({ ok: true });
    expect(late('j-2', 'e7', 'installed')).toEqual({ ok: true });
    expect(late('j-1', 'e7', 'failed')).toEqual({ ok: true });
    // An endpoint that installed in j-1 (or is not in it) cannot change it either.
    for (let i = 0; i < 5; i++) expect(late('j-1', 'e3', 'installed')).toEqual({ ok: true });
    expect(late('j-1', 'stranger', 'installed')).toEqual({ ok: true });
    expect(log.reads).toEqual([]);
    // e7 failed in j-1; its late install is read back, recorded, and completes the job.
    expect(late('j-1', 'e7', 'installed')).toEqual({ ok: true });
    await agents.synced();
    expect(log.reads).toEqual(['j-1']);
    expect(jobs.summary('j-1')).toMatchObject({ phase: 'complete', installed: 20 });
    expect(late('nope', 'e7', 'installed')).toMatchObject({ ok: false });
  });
});

describe('the failed-endpoint filter of an ended job', () => {
  it('never misses an endpoint that failed, and says "maybe" for about one in a hundred others', () => {
    const failed = Array.from({ length: 10_000 }, (_, i) => `relay-dal-pos-${i}`);
    const filter = deviceFilter(failed);
    expect(Buffer.from(filter, 'base64').length).toBe(12_500);
    expect(failed.every((d) => mayContain(filter, d))).toBe(true);
    const others = Array.from({ length: 100_000 }, (_, i) => `relay-dal-pos-${10_000 + i}`);
    const maybe = others.filter((d) => mayContain(filter, d)).length / others.length;
    expect(maybe).toBeLessThan(0.02);
    expect(mayContain(deviceFilter(['a']), 'a')).toBe(true);
  });
});

describe('a drifted endpoint in a long history', () => {
  it('reopens the latest job that installed the version, reading back no more logs than it must', () => {
    const dir = tempDir('history');
    const { jobs, reporter, log } = history(dir, 10);
    const agents = { offered() {} } as unknown as AgentChannel;
    const verifications = new Verifications('r', jobs, reporter as unknown as Reporter, agents);
    log.reads = [];
    // e7 installed p@1 in the even jobs and failed it in the odd ones: j-8 put it there last.
    verifications.answer('e7', undefined, [{ package: 'p', version: '1', state: 'drift', tree: 'x' }]);
    expect(jobs.summary('j-8')).toMatchObject({ phase: 'failed', failed: 1 });
    expect(jobs.get('j-8')?.targets.get('e7')).toMatchObject({ state: 'failed', failureType: 'DRIFT' });
    expect(jobs.summary('j-6')?.phase).toBe('complete');
    // An endpoint no job installed it on: no job is read back, however often it says so.
    for (let i = 0; i < 3; i++)
      verifications.answer('stranger', undefined, [{ package: 'p', version: '1', state: 'drift', tree: `x${i}` }]);
    expect(log.reads).toEqual([]);
  });
});

describe('the reporter’s acknowledgements', () => {
  const setup = (post: (path: string, body: unknown) => Promise<unknown>) => {
    const client = { post } as unknown as Client;
    const reporter = new Reporter(client, quiet, 60_000);
    const delivered: string[][] = [];
    reporter.onDelivered = (ids) => delivered.push(ids);
    return { reporter, delivered };
  };

  it('names a job only once the master took its reports, and not while more of it waits', async () => {
    let refuse = true;
    let sneak: (() => void) | undefined;
    const { reporter, delivered } = setup(async () => {
      if (refuse) throw new Error('ECONNREFUSED');
      sneak?.();
      sneak = undefined;
      return { ok: true };
    });
    reporter.job({ jobId: 'j-1', state: 'complete' });
    reporter.target({ jobId: 'j-1', deviceId: 'a', state: 'installed', attempt: 1 });
    await reporter.drain();
    expect(delivered).toEqual([]);
    refuse = false;
    // While the reports are on their way, j-2 gets another: only j-1 is acknowledged whole.
    reporter.job({ jobId: 'j-2', state: 'failed' });
    sneak = () => reporter.target({ jobId: 'j-2', deviceId: 'b', state: 'failed', attempt: 1 });
    await reporter.drain();
    expect(delivered).toEqual([['j-1']]);
    reporter.job({ jobId: 'j-2', state: 'failed' });
    await reporter.drain();
    expect(delivered).toEqual([['j-1'], ['j-2']]);
    // A plan for an ended job, delivered without the job's own state, acknowledges it too.
    reporter.plan({ planId: 'p-1', jobId: 'j-3' } as unknown as Plan);
    await reporter.drain();
    expect(delivered.at(-1)).toEqual(['j-3']);
  });
});
