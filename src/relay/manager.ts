// The distribution manager: runs each job's command in force, from fetch to every target's end state.
import { EventEmitter } from 'node:events';
import type { Logger } from '../common/log.ts';
import type { Client } from '../protocol/client.ts';
import type { Assignment, DistributionCommand, PackageRef, Plan, TargetState } from '../protocol/types.ts';
import { ContentError, type Depot, failureTypeOf } from './depot.ts';
import { type JobLog, type JobLogRecord, type JobLogState, replay } from './joblog.ts';
import type { Reporter } from './reporter.ts';

export interface ManagerDeps {
  relayId: string;
  log: Logger;
  jobLog: JobLog;
  depot: Depot;
  reporter: Reporter;
  upstream: Client;
  contentPath: (pkg: PackageRef) => string;
  publicKey: () => string;
}

const DEFAULT_DEADLINE_MS = 3_600_000;
const UPSTREAM_RETRIES = 4;

function deadlineOf(cmd: DistributionCommand): number {
  const d = cmd.params.deadline;
  if (d) {
    const m = /^(\d+)(s|m|h)$/.exec(String(d));
    if (m) return Date.parse(cmd.issuedAt) + Number(m[1]) * { s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 's'];
    const t = Date.parse(String(d));
    if (!Number.isNaN(t)) return t;
  }
  return Date.parse(cmd.issuedAt) + DEFAULT_DEADLINE_MS;
}

export class DistributionManager {
  readonly events = new EventEmitter().setMaxListeners(0);
  private readonly jobs = new Map<string, JobLogState>();
  private readonly running = new Map<string, Promise<void>>();
  private readonly deadlines = new Map<string, NodeJS.Timeout>();
  private readonly aborts = new Map<string, AbortController>();

  constructor(private readonly d: ManagerDeps) {}

  /** Rebuilds every job from its log and resumes those that had not ended. */
  resumeAll() {
    for (const jobId of this.d.jobLog.jobIds()) {
      const st = replay(jobId, this.d.jobLog.read(jobId));
      if (!st) continue;
      this.jobs.set(jobId, st);
      this.reportSnapshot(st);
      if (st.phase === 'failed') this.raiseFailureAlert(st);
      if (st.phase !== 'complete' && st.phase !== 'failed') this.start(jobId);
    }
  }

  lastSeq() {
    let seq = 0;
    for (const st of this.jobs.values()) seq = Math.max(seq, st.original.seq);
    return seq;
  }

  get(jobId: string) {
    return this.jobs.get(jobId);
  }
  all() {
    return [...this.jobs.values()];
  }

  /** Records the disk refused (ENOSPC…): kept in order and written first once the disk takes them again. */
  private readonly backlog = new Map<string, JobLogRecord[]>();
  private backlogTimer?: NodeJS.Timeout;

  /** Appends to the job log; a refused write fails the job (a relay-level failure) and returns false. */
  private write(st: JobLogState, ...records: JobLogRecord[]): boolean {
    const pending = [...(this.backlog.get(st.jobId) ?? []), ...records];
    try {
      this.d.jobLog.append(st.jobId, ...pending);
      this.backlog.delete(st.jobId);
      return true;
    } catch (e) {
      const first = !this.backlog.has(st.jobId);
      this.backlog.set(st.jobId, pending);
      this.backlogTimer ??= setInterval(() => this.flushBacklog(), 1000);
      if (first) {
        const ce = failureTypeOf(e);
        this.d.log.error(
          { jobId: st.jobId, err: ce.message },
          'job log write refused; records kept until the disk takes them',
        );
        this.failJob(st, ce.failureType, `job log write failed: ${ce.message}`);
      }
      return false;
    }
  }

  private flushBacklog() {
    for (const [jobId, records] of this.backlog) {
      try {
        this.d.jobLog.append(jobId, ...records);
        this.backlog.delete(jobId);
        this.d.log.info({ jobId, records: records.length }, 'job log writable again; kept records written');
      } catch {
        /* still refused: try again later */
      }
    }
    if (!this.backlog.size) {
      clearInterval(this.backlogTimer);
      this.backlogTimer = undefined;
    }
  }

  /** A new command from the master: on disk first, then acknowledged (by the caller), then run. */
  accept(cmd: DistributionCommand): boolean {
    if (this.jobs.has(cmd.jobId)) return false;
    if (cmd.kind === 'cancel') return false;
    this.d.jobLog.append(cmd.jobId, { type: 'command', at: new Date().toISOString(), command: cmd });
    const st = replay(cmd.jobId, this.d.jobLog.read(cmd.jobId))!;
    this.jobs.set(cmd.jobId, st);
    this.d.reporter.job({ jobId: cmd.jobId, state: 'received' });
    this.start(cmd.jobId);
    return true;
  }

  /** Cancel from the master: targets that have not installed end as failed (CANCELLED). */
  cancel(jobId: string) {
    const st = this.jobs.get(jobId);
    if (!st) return;
    this.aborts.get(jobId)?.abort();
    this.failJob(st, 'CANCELLED', 'the job was cancelled by the master');
  }

  private start(jobId: string) {
    if (this.running.has(jobId)) return;
    const p = this.run(jobId)
      .catch((err) => this.d.log.error({ err, jobId }, 'job run crashed'))
      .finally(() => this.running.delete(jobId));
    this.running.set(jobId, p);
  }

  private async run(jobId: string) {
    const st = this.jobs.get(jobId)!;
    const cmd = st.current;
    const ac = new AbortController();
    this.aborts.set(jobId, ac);
    // Deadline: whatever has not installed by then ends as failed, definitely.
    const left = deadlineOf(cmd) - Date.now();
    clearTimeout(this.deadlines.get(jobId));
    this.deadlines.set(
      jobId,
      setTimeout(() => this.onDeadline(jobId, cmd.commandId), Math.max(0, Math.min(left, 2 ** 31 - 1))),
    );

    this.setPhase(st, 'fetching');
    for (const pkg of cmd.packages) {
      if (this.d.depot.has(pkg.digest)) continue;
      let attempt = 0;
      for (;;) {
        try {
          const r = await this.d.depot.fetch(pkg, this.d.upstream, this.d.contentPath(pkg), this.d.publicKey(), {
            rateLimitKBps: cmd.params.rateLimitKBps,
            signal: ac.signal,
            onStart: (from) =>
              this.write(st, {
                type: 'fetch',
                at: new Date().toISOString(),
                event: 'started',
                digest: pkg.digest,
                bytes: 0,
                from,
              }),
          });
          this.write(st, {
            type: 'fetch',
            at: new Date().toISOString(),
            event: 'verified',
            digest: pkg.digest,
            bytes: r.fetched,
            from: r.from,
          });
          st.verified.add(pkg.digest);
          break;
        } catch (e) {
          if (ac.signal.aborted) return;
          const ce = failureTypeOf(e);
          if (ce.retryable && attempt++ < UPSTREAM_RETRIES) {
            this.d.log.warn(
              { jobId, digest: pkg.digest, attempt, err: ce.message },
              'upstream fetch failed; resuming after a pause',
            );
            await new Promise((r) => setTimeout(r, 500 * 2 ** attempt));
            continue;
          }
          this.failJob(st, ce.failureType, ce.message);
          return;
        }
      }
    }
    // A refused job-log write may have failed the job while it fetched.
    if (st.current !== cmd || st.phase === 'failed') return;
    this.setPhase(st, 'distributing');
    // Targets already installed keep their state; everything else is offered to its agent.
    for (const deviceId of cmd.distributionList) {
      const t = st.targets.get(deviceId)!;
      if (t.state === 'installed') continue;
      if (t.attempt === 0) this.setTarget(st, deviceId, 'pending', 1);
      this.events.emit(`assign:${deviceId}`);
    }
    this.checkEnd(st);
  }

  private setPhase(st: JobLogState, phase: JobLogState['phase']) {
    st.phase = phase;
    this.d.reporter.job({
      jobId: st.jobId,
      state: phase,
      failureType: st.failure?.failureType,
      error: st.failure?.message,
    });
    this.events.emit('changed', st.jobId);
  }

  private setTarget(
    st: JobLogState,
    deviceId: string,
    state: TargetState,
    attempt: number,
    failureType?: string,
    error?: string,
  ) {
    const at = new Date().toISOString();
    const written = this.write(st, {
      type: 'target',
      at,
      deviceId,
      state,
      attempt,
      commandId: st.current.commandId,
      failureType,
      error,
    });
    // Not on disk and the job failed meanwhile: the failure's records stand instead.
    if (!written && state !== 'failed') return;
    st.targets.set(deviceId, { state, attempt, failureType, error, at });
    this.d.reporter.target({ jobId: st.jobId, deviceId, state, attempt, failureType, error, at });
    this.events.emit('changed', st.jobId);
  }

  /** Relay-level failure: recorded, every open target failed with the same type, an alert raised. */
  private failJob(st: JobLogState, failureType: string, message: string) {
    if (st.phase === 'failed' || st.phase === 'complete') return;
    st.phase = 'failed';
    const at = new Date().toISOString();
    this.write(st, { type: 'failed', at, commandId: st.current.commandId, failureType, message });
    st.failure = { failureType, message };
    for (const deviceId of st.current.distributionList) {
      const t = st.targets.get(deviceId)!;
      if (t.state !== 'installed' && t.state !== 'failed')
        this.setTarget(st, deviceId, 'failed', t.attempt, failureType, message);
    }
    this.setPhase(st, 'failed');
    this.finish(st);
    this.d.log.error({ jobId: st.jobId, failureType, message }, 'distribution failed');
    this.raiseFailureAlert(st);
  }

  private raiseFailureAlert(st: JobLogState) {
    if (!st.failure) return;
    this.d.reporter.alert({
      source: this.d.relayId,
      alertId: `${st.jobId}/${st.current.commandId}/failed`,
      deviceId: this.d.relayId,
      failureType: st.failure.failureType,
      jobId: st.jobId,
      relayId: this.d.relayId,
      message: st.failure.message,
    });
  }

  private finish(st: JobLogState) {
    // The plan that started this command ends with it.
    for (const p of st.plans.values())
      if (p.commandId === st.current.commandId && (p.state === 'running' || p.state === 'approved'))
        this.recordPlan({ ...p, state: st.phase === 'complete' ? 'complete' : 'failed' });
    clearTimeout(this.deadlines.get(st.jobId));
    this.deadlines.delete(st.jobId);
    this.aborts.delete(st.jobId);
  }

  private checkEnd(st: JobLogState) {
    if (st.phase !== 'distributing') return;
    const list = st.current.distributionList.map((d) => st.targets.get(d)!);
    if (list.every((t) => t.state === 'installed')) {
      this.write(st, { type: 'complete', at: new Date().toISOString(), commandId: st.current.commandId });
      this.setPhase(st, 'complete');
      this.finish(st);
    } else if (list.every((t) => t.state === 'installed' || t.state === 'failed')) {
      this.setPhase(st, 'failed');
      this.finish(st);
    }
  }

  private onDeadline(jobId: string, commandId: string) {
    const st = this.jobs.get(jobId);
    if (!st || st.current.commandId !== commandId || st.phase === 'complete' || st.phase === 'failed') return;
    this.aborts.get(jobId)?.abort();
    const open = st.current.distributionList.filter((d) => !['installed', 'failed'].includes(st.targets.get(d)!.state));
    if (st.phase !== 'distributing')
      return this.failJob(st, 'DEADLINE', `deadline passed before the content was in the depot`);
    for (const d of open)
      this.setTarget(
        st,
        d,
        'failed',
        st.targets.get(d)!.attempt,
        'DEADLINE',
        'deadline passed before the target installed',
      );
    this.checkEnd(st);
  }

  /** What an agent should do now: every job where it is a target that has not ended. */
  assignmentsFor(deviceId: string): Assignment[] {
    const out: Assignment[] = [];
    for (const st of this.jobs.values()) {
      if (st.phase !== 'distributing' || !st.current.distributionList.includes(deviceId)) continue;
      const t = st.targets.get(deviceId)!;
      if (t.state === 'installed' || t.state === 'failed') continue;
      out.push({
        assignmentId: `${st.current.commandId}/${deviceId}/${t.attempt}`,
        jobId: st.jobId,
        commandId: st.current.commandId,
        attempt: t.attempt,
        packages: st.current.packages,
        params: st.current.params,
      });
    }
    return out;
  }

  /** An agent's report about its own target. */
  agentReport(
    deviceId: string,
    r: { jobId: string; commandId: string; state: TargetState; attempt?: number; failureType?: string; error?: string },
  ) {
    const st = this.jobs.get(r.jobId);
    if (!st?.current.distributionList.includes(deviceId))
      return { ok: false, reason: `no assignment for ${deviceId} in job ${r.jobId}` };
    const t = st.targets.get(deviceId)!;
    if (r.commandId !== st.current.commandId && r.state !== 'installed')
      return { ok: false, reason: 'stale report for an earlier command' };
    if (t.state === 'installed' || t.state === 'failed') return { ok: true }; // ended states stay ended
    if (r.state === 'failed') {
      const maxAttempts = Number(st.current.params.maxAttempts ?? 3);
      this.setTarget(st, deviceId, 'failed', t.attempt, r.failureType ?? 'INSTALL_FAILED', r.error);
      if (t.attempt < maxAttempts) {
        this.setTarget(st, deviceId, 'pending', t.attempt + 1);
        this.events.emit(`assign:${deviceId}`);
      } else {
        this.d.reporter.alert({
          source: this.d.relayId,
          alertId: `${st.jobId}/${st.current.commandId}/${deviceId}/failed`,
          deviceId,
          jobId: st.jobId,
          relayId: this.d.relayId,
          failureType: r.failureType ?? 'INSTALL_FAILED',
          message: `after ${t.attempt} attempt(s): ${r.error ?? 'failed'}`,
        });
      }
    } else if (r.state !== t.state) this.setTarget(st, deviceId, r.state, t.attempt);
    this.checkEnd(st);
    return { ok: true };
  }

  /** An approved redistribution: recorded in the job log, then run like any command. */
  runRedistribution(plan: Plan, cmd: DistributionCommand, approvedBy: string) {
    const st = this.jobs.get(plan.jobId)!;
    this.write(st, {
      type: 'redistribution',
      at: new Date().toISOString(),
      command: cmd,
      planId: plan.planId,
      approvedBy,
    });
    const fresh = replay(st.jobId, this.d.jobLog.read(st.jobId))!;
    this.jobs.set(st.jobId, fresh);
    for (const d of cmd.distributionList) this.setTarget(fresh, d, 'pending', 0);
    this.setPhase(fresh, 'received');
    this.start(st.jobId);
  }

  recordPlan(plan: Plan) {
    const st = this.jobs.get(plan.jobId);
    if (!st) throw new ContentError('UNKNOWN', `job ${plan.jobId} is not in this relay's job log`);
    this.write(st, { type: 'plan', at: new Date().toISOString(), plan });
    st.plans.set(plan.planId, plan);
    this.d.reporter.plan(plan);
    this.events.emit('changed', plan.jobId);
  }

  private reportSnapshot(st: JobLogState) {
    this.d.reporter.job({
      jobId: st.jobId,
      state: st.phase,
      failureType: st.failure?.failureType,
      error: st.failure?.message,
    });
    for (const [deviceId, t] of st.targets)
      this.d.reporter.target({
        jobId: st.jobId,
        deviceId,
        state: t.state,
        attempt: t.attempt,
        failureType: t.failureType,
        error: t.error,
        at: t.at,
      });
    for (const p of st.plans.values()) this.d.reporter.plan(p);
  }

  async stop() {
    clearInterval(this.backlogTimer);
    this.flushBacklog();
    for (const t of this.deadlines.values()) clearTimeout(t);
    for (const a of this.aborts.values()) a.abort();
    await Promise.allSettled(this.running.values());
  }
}
