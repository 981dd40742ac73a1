// The relay's jobs: every change is records written to the job log first, then folded into the
// job's state (state.ts), then reported to the master. Nothing else changes a job. Jobs that have
// not ended are held whole; an ended one is held as its summary and read back from its log on
// demand, so a relay's memory and start-up do not grow with the jobs it has ever run.
import { EventEmitter } from 'node:events';
import type { Logger } from '../common/log.ts';
import type { FailureType } from '../protocol/failure-types.ts';
import { failureTypeOf } from './depot.ts';
import { ended, type JobSummary, readSummary, writeSummary } from './job-summary.ts';
import { JobTable } from './job-table.ts';
import type { JobLog, JobLogRecord } from './joblog.ts';
import type { Reporter } from './reporter.ts';
import { apply, failOpenTargets, type JobState, replay } from './state.ts';

const now = () => new Date().toISOString();

export class RelayJobs {
  /** `changed` (jobId) on any change, `ended` (state) when the command in force ends, `withdrawn` (deviceId). */
  readonly events = new EventEmitter().setMaxListeners(0);
  private readonly table = new JobTable((jobId) =>
    replay(jobId, [...this.jobLog.read(jobId), ...(this.backlog.get(jobId) ?? [])]),
  );
  /** Records the disk refused (ENOSPC…): kept in order and written first once the disk takes them. */
  private readonly backlog = new Map<string, JobLogRecord[]>();
  private backlogTimer?: NodeJS.Timeout;

  constructor(
    private readonly log: Logger,
    private readonly jobLog: JobLog,
    private readonly reporter: Reporter,
  ) {
    reporter.onDelivered = (jobIds) => this.acknowledged(jobIds);
  }

  /**
   * Reads the job log. An ended job whose summary file still stands (the master acknowledged all of
   * it) is taken from that file; every other job is replayed and the master told where it stands.
   * Returns the replayed jobs.
   */
  load(): JobSummary[] {
    const replayed: JobSummary[] = [];
    for (const jobId of this.jobLog.jobIds()) {
      const kept = readSummary(this.jobLog, jobId);
      if (kept && ended(kept.phase)) {
        this.table.keep(kept);
        continue;
      }
      const st = replay(jobId, this.jobLog.read(jobId));
      if (!st) continue;
      this.table.place(st);
      this.reporter.job({ jobId, state: st.phase, failureType: st.failure?.failureType, error: st.failure?.message });
      for (const [deviceId, t] of st.targets) this.reporter.target({ jobId, deviceId, ...t });
      for (const p of st.plans.values()) this.reporter.plan(p);
      replayed.push(this.table.summary(jobId)!);
    }
    this.log.info({ jobs: this.table.size, replayed: replayed.length }, 'job log read');
    return replayed;
  }

  /** The whole job: held, or read back from its log. */
  get(jobId: string) {
    return this.table.get(jobId);
  }
  summary(jobId: string) {
    return this.table.summary(jobId);
  }
  /** The summary of an ended job, as placed when it ended; undefined for one still open (cheap). */
  endedSummary(jobId: string) {
    return this.table.endedSummary(jobId);
  }
  /** Every job in the log, in its order. */
  summaries() {
    return this.table.summaries();
  }
  /** The jobs that have not ended, whole. */
  open() {
    return this.table.open();
  }

  /** The master has every report of these jobs: an ended one's summary file spares its log a replay at the next start. */
  acknowledged(jobIds: string[]) {
    for (const jobId of jobIds) {
      const s = this.table.endedSummary(jobId);
      if (!s || this.backlog.has(jobId)) continue;
      try {
        writeSummary(this.jobLog, s);
      } catch (err) {
        this.log.warn({ jobId, err: (err as Error).message }, 'job summary not written; its log is read at next start');
      }
    }
  }

  /** A new job: its command is on disk (fsync) before this returns, so the caller may acknowledge it. */
  create(records: JobLogRecord[]): JobState {
    const first = records[0];
    if (first?.type !== 'command') throw new Error('a job log starts with its command');
    this.jobLog.append(first.command.jobId, records);
    const st = replay(first.command.jobId, records)!;
    this.table.place(st);
    this.reported(undefined, st, records);
    return st;
  }

  /**
   * Writes records, then applies them. When the disk refuses, they wait in the backlog (written
   * first once the disk takes them), the job fails as DISK_FULL, and false is returned; they are
   * applied all the same, so memory is always the log plus its backlog, never something else.
   */
  record(jobId: string, records: JobLogRecord[], syncLater = false): boolean {
    const st = this.get(jobId);
    if (!st) throw new Error(`job ${jobId} is not in the job log`);
    const pending = [...(this.backlog.get(jobId) ?? []), ...records];
    let refused: ReturnType<typeof failureTypeOf> | undefined;
    try {
      this.jobLog.append(jobId, pending, syncLater);
      this.backlog.delete(jobId);
    } catch (e) {
      if (!this.backlog.has(jobId)) refused = failureTypeOf(e);
      this.backlog.set(jobId, pending);
      this.backlogTimer ??= setInterval(() => this.flushBacklog(), 1000);
    }
    // Applied in the order they will reach the disk: these records first, then any failure they cause.
    const phase = st.phase;
    let next: JobState = st;
    for (const r of records) next = apply(next, r) ?? next;
    this.table.place(next);
    this.reported(phase, next, records);
    if (refused) {
      this.log.error({ jobId, err: refused.message }, 'job log write refused; records kept until the disk takes them');
      this.fail(jobId, refused.failureType, `job log write failed: ${refused.message}`);
    }
    if (next.phase === 'complete' && phase !== 'complete' && records.at(-1)?.type !== 'complete')
      this.record(jobId, [{ type: 'complete', at: now(), commandId: next.current.commandId }], syncLater);
    return !this.backlog.has(jobId);
  }

  /** Resolves once the records written with `syncLater` are on disk (one shared fsync per job log). */
  synced() {
    return this.jobLog.synced();
  }

  /** Relay-level failure: recorded, every open target failed with the same type. */
  fail(jobId: string, failureType: FailureType, message: string) {
    const st = this.get(jobId);
    // Once per command: a job that ended with failed targets still gets its relay-level cause.
    if (!st || st.failure || st.phase === 'complete') return;
    this.failOpen(st, failureType, message, true);
    this.log.error({ jobId, failureType, message }, 'distribution failed');
  }

  /** Fails every open target (and with `whole`, the job); `withdrawn` tells each one's endpoint at once. */
  failOpen(st: JobState, failureType: FailureType, message: string, whole = false) {
    const [at, commandId] = [now(), st.current.commandId];
    const targets = failOpenTargets(st, at, commandId, failureType, message);
    const failed = { type: 'failed' as const, at, commandId, failureType, message };
    this.record(st.jobId, whole ? [failed, ...targets] : targets);
    for (const t of targets) this.events.emit('withdrawn', t.deviceId);
  }

  private reported(phase: string | undefined, st: JobState, records: JobLogRecord[]) {
    for (const r of records) {
      if (r.type === 'target')
        this.reporter.target({ jobId: st.jobId, deviceId: r.deviceId, ...st.targets.get(r.deviceId)! });
      if (r.type === 'plan') this.reporter.plan(r.plan);
    }
    // A relay-level failure after the targets had all ended changes the job's cause, not its phase.
    if (st.phase !== phase || records.some((r) => r.type === 'failed')) {
      this.reporter.job({
        jobId: st.jobId,
        state: st.phase,
        failureType: st.failure?.failureType,
        error: st.failure?.message,
      });
      if (st.phase === 'complete' || st.phase === 'failed') this.events.emit('ended', st);
    }
    this.events.emit('changed', st.jobId);
  }

  private flushBacklog() {
    for (const [jobId, records] of this.backlog) {
      try {
        this.jobLog.append(jobId, records);
        this.backlog.delete(jobId);
        this.log.info({ jobId, records: records.length }, 'job log writable again; kept records written');
      } catch {
        /* still refused: try again later */
      }
    }
    if (!this.backlog.size) {
      clearInterval(this.backlogTimer);
      this.backlogTimer = undefined;
    }
  }

  stop() {
    clearInterval(this.backlogTimer);
    this.flushBacklog();
  }
}
