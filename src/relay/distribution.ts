// The distribution manager: runs each job's command in force, from fetching its content into the
// depot to offering every target to its agent, within the job's deadline.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../common/log.ts';
import { commandProblem } from '../protocol/command.ts';
import type { DistributionCommand, PackageRef } from '../protocol/types.ts';
import { Deadlines, endAtDeadline } from './deadlines.ts';
import { type Depot, failureTypeOf } from './depot.ts';
import { reportCancelRefused, reportNotWritten, reportRefused, reportRelayFailure } from './failures.ts';
import { ended } from './job-summary.ts';
import type { RelayJobs } from './jobs.ts';
import type { Reporter } from './reporter.ts';
import { type JobState, openTargets } from './state.ts';
import { offer } from './targets.ts';
import type { Upstream } from './upstream.ts';

export interface DistributorDeps {
  relayId: string;
  log: Logger;
  jobs: RelayJobs;
  depot: Depot;
  reporter: Reporter;
  upstream: Upstream;
  contentPath: (pkg: PackageRef) => string;
  /** The master keys this relay trusts (pinned, and rotated since); `offered` wakes that agent's long-poll. */
  keys: () => readonly string[];
  offered: (deviceId: string) => void;
  /** The fetch rate cap (the job's and the relay's, the lower); `fetched` when content arrived (depot cap). */
  fetchKBps?: (cmd: DistributionCommand) => number | undefined;
  fetched?: () => void;
}

const DEFAULT_DEADLINE_MS = 3_600_000;
const FETCH_RETRIES = 4;
const now = () => new Date().toISOString();

export class Distributor {
  private readonly running = new Map<string, Promise<void>>();
  private readonly deadlines = new Deadlines((jobId, commandId) => this.onDeadline(jobId, commandId));
  private readonly aborts = new Map<string, AbortController>();

  constructor(private readonly d: DistributorDeps) {
    d.jobs.events.on('ended', (st: JobState) => {
      this.clear(st.jobId);
      if (st.failure) reportRelayFailure(this.d.reporter, this.d.relayId, this.d.jobs.endedSummary(st.jobId)!);
    });
  }

  /** Reads the job log and resumes the jobs that had not ended; the master hears again of those it may have missed. */
  resume() {
    for (const s of this.d.jobs.load()) {
      if (s.phase === 'failed') reportRelayFailure(this.d.reporter, this.d.relayId, s);
      if (!ended(s.phase)) this.start(s.jobId);
    }
  }

  /** A master command, on disk before it is acknowledged; one for a known job moves targets here (failover). */
  accept(cmd: DistributionCommand): boolean {
    if (cmd.kind === 'cancel') return this.cancel(cmd);
    const known = this.d.jobs.summary(cmd.jobId);
    if (known?.commandIds.includes(cmd.commandId)) return false;
    const problem = commandProblem(this.d.keys(), cmd, this.d.relayId);
    if (problem) {
      this.d.log.error({ jobId: cmd.jobId, commandId: cmd.commandId, why: problem }, 'command refused');
      reportRefused(this.d.reporter, this.d.relayId, cmd, problem);
      return false;
    }
    const moved = {
      type: 'redistribution',
      at: now(),
      command: cmd,
      planId: 'failover',
      approvedBy: 'master',
    } as const;
    if (known) {
      this.d.jobs.record(cmd.jobId, [moved]);
      this.start(cmd.jobId);
      return true;
    }
    try {
      this.d.jobs.create([{ type: 'command', at: now(), command: cmd }]);
    } catch (e) {
      // Not on disk, so not acknowledged: the master sends it again. Meanwhile it is a relay-level failure.
      const ce = failureTypeOf(e);
      this.d.log.error({ jobId: cmd.jobId, err: ce.message }, 'command not written to the job log; it will come again');
      reportNotWritten(this.d.reporter, this.d.relayId, cmd, ce);
      throw e;
    }
    this.start(cmd.jobId);
    return true;
  }

  /** Open targets end as CANCELLED, on a cancel the master signed for this relay; others could stop any job. */
  private cancel(cmd: DistributionCommand): boolean {
    const problem = commandProblem(this.d.keys(), cmd, this.d.relayId);
    if (problem) {
      this.d.log.error({ jobId: cmd.jobId, commandId: cmd.commandId, why: problem }, 'cancel refused');
      reportCancelRefused(this.d.reporter, this.d.relayId, cmd, problem);
      return false;
    }
    if (!this.d.jobs.summary(cmd.jobId)) return false;
    this.aborts.get(cmd.jobId)?.abort();
    this.d.jobs.fail(cmd.jobId, 'CANCELLED', `the job was cancelled by ${cmd.issuedBy}`);
    return true;
  }

  start(jobId: string) {
    if (this.running.has(jobId)) return;
    const p = this.run(jobId)
      .catch((err) => this.d.log.error({ err, jobId }, 'job run crashed'))
      .finally(() => this.running.delete(jobId));
    this.running.set(jobId, p);
  }

  private async run(jobId: string) {
    const cmd = this.d.jobs.get(jobId)!.current;
    const ac = new AbortController();
    this.aborts.set(jobId, ac);
    this.deadlines.arm(jobId, cmd, DEFAULT_DEADLINE_MS);
    for (const pkg of cmd.packages) {
      if (this.d.depot.has(pkg.digest)) continue;
      if (!(await this.fetch(jobId, pkg, cmd, ac.signal))) return;
    }
    // A refused job-log write may have failed the job while it fetched.
    const st = this.d.jobs.get(jobId)!;
    if (st.current !== cmd || st.phase === 'failed') return;
    const at = now();
    const offers = cmd.distributionList.flatMap((deviceId) => {
      const o = offer(st.targets.get(deviceId)!);
      return o
        ? [
            {
              type: 'target' as const,
              at,
              deviceId,
              state: 'pending' as const,
              attempt: o.attempt,
              commandId: cmd.commandId,
            },
          ]
        : [];
    });
    if (offers.length) this.d.jobs.record(jobId, offers);
    for (const deviceId of openTargets(this.d.jobs.get(jobId)!)) this.d.offered(deviceId);
  }

  /** Fetches one package into the depot, riding out an upstream that drops the connection. */
  private async fetch(jobId: string, pkg: PackageRef, cmd: DistributionCommand, signal: AbortSignal) {
    for (let attempt = 0; ; attempt++) {
      try {
        const r = await this.d.depot.fetch(pkg, this.d.upstream, this.d.contentPath(pkg), this.d.keys(), {
          rateLimitKBps: this.d.fetchKBps?.(cmd) ?? cmd.params.rateLimitKBps,
          signal,
          onStart: (from) =>
            this.d.jobs.record(jobId, [
              { type: 'fetch', at: now(), event: 'started', digest: pkg.digest, bytes: 0, from },
            ]),
        });
        this.d.jobs.record(jobId, [
          { type: 'fetch', at: now(), event: 'verified', digest: pkg.digest, bytes: r.fetched, from: r.from },
        ]);
        this.d.fetched?.();
        return true;
      } catch (e) {
        if (signal.aborted) return false;
        const ce = failureTypeOf(e);
        if (ce.retryable && attempt < FETCH_RETRIES) {
          this.d.log.warn(
            { jobId, digest: pkg.digest, attempt: attempt + 1, err: ce.message },
            'upstream fetch failed; resuming after a pause',
          );
          await sleep(500 * 2 ** (attempt + 1), undefined, { signal }).catch(() => undefined);
          continue;
        }
        this.d.jobs.fail(jobId, ce.failureType, ce.message);
        return false;
      }
    }
  }

  /** Whatever has not installed by the deadline ends as failed, definitely. */
  private onDeadline(jobId: string, commandId: string) {
    const st = this.d.jobs.get(jobId);
    if (!st || st.current.commandId !== commandId || st.phase === 'complete' || st.phase === 'failed') return;
    this.aborts.get(jobId)?.abort();
    endAtDeadline(this.d.jobs, st);
  }

  private clear(jobId: string) {
    this.deadlines.clear(jobId);
    this.aborts.delete(jobId);
  }

  async stop() {
    this.deadlines.stop();
    for (const a of this.aborts.values()) a.abort();
    await Promise.allSettled(this.running.values());
  }
}
