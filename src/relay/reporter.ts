// Batched, retried reports to the master. Reports carry states, so a resend is harmless.
import type { Logger } from '../common/log.ts';
import type { Client } from '../protocol/client.ts';
import type { Plan, RelayReport, TargetReport, VerificationReport } from '../protocol/types.ts';

export class Reporter {
  private jobs = new Map<string, RelayReport['jobs'][number]>();
  private targets = new Map<string, TargetReport>();
  private plans = new Map<string, Plan>();
  private alerts: Record<string, unknown>[] = [];
  private verifications: VerificationReport[] = [];
  private timer?: NodeJS.Timeout;
  private flushing?: Promise<void>;

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
    };
    const alerts = this.alerts;
    this.jobs = new Map();
    this.targets = new Map();
    this.plans = new Map();
    this.alerts = [];
    this.verifications = [];
    try {
      if (report.jobs.length || report.targets.length || report.plans.length || report.verifications.length)
        await this.master.post('api/v1/relay/reports', report);
    } catch (err) {
      // Put back what was not delivered, unless something newer replaced it meanwhile.
      for (const j of report.jobs) if (!this.jobs.has(j.jobId)) this.jobs.set(j.jobId, j);
      for (const t of report.targets)
        if (!this.targets.has(`${t.jobId}/${t.deviceId}`)) this.targets.set(`${t.jobId}/${t.deviceId}`, t);
      for (const p of report.plans) if (!this.plans.has(p.planId)) this.plans.set(p.planId, p);
      this.alerts.unshift(...alerts);
      this.verifications.unshift(...report.verifications);
      this.log.warn({ err: (err as Error).message }, 'master unreachable; reports kept for the next try');
      this.schedule(2000);
      return;
    }
    if (alerts.length) {
      try {
        await this.master.post('api/v1/alerts', alerts);
      } catch (err) {
        this.alerts.unshift(...alerts);
        this.log.warn({ err: (err as Error).message }, 'alerts not delivered; will retry');
        this.schedule(2000);
      }
    }
  }

  async drain() {
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.flushing;
    await this.flush();
  }
}
