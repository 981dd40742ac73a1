// Batched, retried reports to the master. Reports carry states, so a resend is harmless.
import type { Logger } from '../common/log.ts';
import type { Client } from '../protocol/client.ts';
import { MAX_ALERTS_PER_REQUEST } from '../protocol/limits.ts';
import type { Plan, RelayReport, TargetReport, VerificationReport } from '../protocol/types.ts';

/** A request of reports stays well under the 1 MiB most routes take. */
const PART_BYTES = 256 * 1024;

export class Reporter {
  private jobs = new Map<string, RelayReport['jobs'][number]>();
  private targets = new Map<string, TargetReport>();
  private plans = new Map<string, Plan>();
  private alerts: Record<string, unknown>[] = [];
  private verifications: VerificationReport[] = [];
  private seenAt = new Map<string, string>();
  private timer?: NodeJS.Timeout;
  private flushing?: Promise<void>;
  /** Jobs whose every report so far has reached the master (their end among them, or not). */
  onDelivered?: (jobIds: string[]) => void;

  constructor(
    private readonly master: Client,
    private readonly log: Logger,
    private readonly intervalMs = 200,
  ) {}

  job(j: RelayReport['jobs'][number]) {
    this.jobs.set(j.jobId, j);
    this.schedule();
  }
  target(t: TargetReport) {
    this.targets.set(`${t.jobId}/${t.deviceId}`, t);
    this.schedule();
  }
  plan(p: Plan) {
    this.plans.set(p.planId, p);
    this.schedule();
  }
  verification(v: VerificationReport) {
    this.verifications.push(v);
    this.schedule();
  }
  alert(a: Record<string, unknown>) {
    this.alerts.push(a);
    this.schedule();
  }
  /** Endpoints that asked for work, and when. */
  seen(polls: Map<string, string>) {
    if (!polls.size) return;
    for (const [id, at] of polls) this.seenAt.set(id, at);
    this.schedule();
  }

  private schedule(delay = this.intervalMs) {
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      // One flush at a time: a newer state must never overtake an older one on the way to the master.
      this.flushing = (this.flushing ?? Promise.resolve()).then(() => this.flush());
    }, delay);
  }

  async flush() {
    const report: RelayReport = {
      jobs: [...this.jobs.values()],
      targets: [...this.targets.values()],
      plans: [...this.plans.values()],
      verifications: this.verifications,
      seen: [...this.seenAt].map(([deviceId, at]) => ({ deviceId, at })),
    };
    const alerts = this.alerts;
    this.seenAt = new Map();
    this.jobs = new Map();
    this.targets = new Map();
    this.plans = new Map();
    this.alerts = [];
    this.verifications = [];
    const parts = inParts(report, PART_BYTES);
    for (let i = 0; i < parts.length; i++) {
      try {
        await this.master.post('api/v1/relay/reports', { ...parts[i], sentAt: new Date().toISOString() });
      } catch (err) {
        for (const rest of parts.slice(i)) this.putBack(rest);
        this.alerts.unshift(...alerts);
        this.log.warn({ err: (err as Error).message }, 'reports not delivered to the master; kept for the next try');
        this.schedule(2000);
        return;
      }
    }
    // In parts: alerts kept through a long outage could outgrow what one request may carry.
    for (let i = 0; i < alerts.length; i += MAX_ALERTS_PER_REQUEST) {
      try {
        await this.master.post('api/v1/alerts', alerts.slice(i, i + MAX_ALERTS_PER_REQUEST));
      } catch (err) {
        this.alerts.unshift(...alerts.slice(i));
        this.log.warn({ err: (err as Error).message }, 'alerts not delivered; will retry');
        this.schedule(2000);
        return;
      }
    }
    if (!this.onDelivered) return;
    // A plan or a late install for an ended job is delivered without the job's own state.
    const ids = new Set([...report.jobs, ...report.plans].map((j) => j.jobId));
    for (const t of report.targets) ids.add(t.jobId);
    try {
      if (ids.size) {
        const held = this.held();
        this.onDelivered([...ids].filter((id) => !held.has(id)));
      }
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'could not note what the master acknowledged');
    }
  }

  /** The jobs something about which waits to be sent (flushes run one at a time, so none is in flight). */
  private held() {
    const ids = new Set(this.jobs.keys());
    for (const a of this.alerts) if (typeof a.jobId === 'string') ids.add(a.jobId);
    for (const p of this.plans.values()) ids.add(p.jobId);
    for (const t of this.targets.values()) ids.add(t.jobId);
    return ids;
  }

  /** What was not delivered goes back, unless something newer replaced it meanwhile. */
  private putBack(r: RelayReport) {
    for (const j of r.jobs) if (!this.jobs.has(j.jobId)) this.jobs.set(j.jobId, j);
    for (const t of r.targets)
      if (!this.targets.has(`${t.jobId}/${t.deviceId}`)) this.targets.set(`${t.jobId}/${t.deviceId}`, t);
    for (const p of r.plans) if (!this.plans.has(p.planId)) this.plans.set(p.planId, p);
    this.verifications.unshift(...r.verifications);
    for (const x of r.seen) if (!this.seenAt.has(x.deviceId)) this.seenAt.set(x.deviceId, x.at);
  }

  async drain() {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.flushing = (this.flushing ?? Promise.resolve()).then(() => this.flush());
    await this.flushing;
  }
}

/** Polls, targets and verifications in requests of about `bytes` each (10,000 endpoints' reports outgrow
 * one request); jobs and plans go with the last, so the master has the targets before a job's end. */
function inParts(r: RelayReport, bytes: number): RelayReport[] {
  if (!r.jobs.length && !r.targets.length && !r.plans.length && !r.verifications.length && !r.seen.length) return [];
  const parts: RelayReport[] = [];
  const empty = (): RelayReport => ({ jobs: [], targets: [], plans: [], verifications: [], seen: [] });
  let part = empty();
  let size = 0;
  const room = (item: unknown) => {
    const n = JSON.stringify(item).length + 1;
    if (size + n > bytes && (part.targets.length || part.verifications.length || part.seen.length)) {
      parts.push(part);
      part = empty();
      size = 0;
    }
    size += n;
  };
  for (const x of r.seen) {
    room(x);
    part.seen.push(x);
  }
  for (const t of r.targets) {
    room(t);
    part.targets.push(t);
  }
  for (const v of r.verifications) {
    room(v);
    part.verifications.push(v);
  }
  parts.push({ ...part, jobs: r.jobs, plans: r.plans });
  return parts;
}
