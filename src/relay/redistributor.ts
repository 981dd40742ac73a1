// Redistribution on the relay (DESIGN §7): the only writer of plans. Plans live in the job log;
// the master mirrors what the relay reports. Approval hands the new command to the distributor.

import { authorityOf, renewDue } from '../protocol/command.ts';
import { FanoutError } from '../protocol/errors.ts';
import { canonicalJson } from '../protocol/signing.ts';
import type { Plan, SkippedJob } from '../protocol/types.ts';
import type { Depot } from './depot.ts';
import type { Distributor } from './distribution.ts';
import type { RelayJobs } from './jobs.ts';
import { movedOnTargets, withFleet } from './moved-on.ts';
import { buildPlan, commandFromPlan, needsRedistribution } from './plan.ts';
import { fleetMovedOn, type MasterForPlans, offline } from './plan-master.ts';
import type { JobState } from './state.ts';

export class Redistributor {
  constructor(
    private readonly relayId: string,
    private readonly jobs: RelayJobs,
    private readonly distributor: Distributor,
    private readonly depot: Depot,
    private readonly master: MasterForPlans = offline,
  ) {
    // The plan that started a command ends with it; once the job is complete, no plan is left waiting.
    jobs.events.on('ended', (st: JobState) => {
      for (const p of st.plans.values())
        if (p.commandId === st.current.commandId && (p.state === 'running' || p.state === 'approved'))
          this.record({ ...p, state: st.phase === 'complete' ? 'complete' : 'failed' });
      if (st.phase === 'complete') this.supersede(st, 'the job is complete');
    });
  }

  list(): Plan[] {
    return this.jobs
      .summaries()
      .flatMap((s) => s.plans)
      .sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  /**
   * Plans for one job, or else for the jobs the master has open failed-distribution records of and
   * every failed job in the log; a plan already waiting is returned, not duplicated.
   */
  async plan(jobId?: string, opts: { dryRun?: boolean } = {}) {
    let ids: string[];
    let open = new Set<string>();
    if (jobId) {
      if (!this.jobs.summary(jobId))
        throw new FanoutError('FANOUT_ERR_JOB_UNKNOWN', { jobId, where: ` in relay ${this.relayId}'s job log` });
      ids = [jobId];
    } else {
      open = new Set(await this.master.openFailed().catch(() => []));
      ids = this.jobs
        .summaries()
        .filter((s) => open.has(s.jobId) || s.phase === 'failed')
        .map((s) => s.jobId);
    }
    const plans: Plan[] = [];
    const skipped: SkippedJob[] = [];
    const inFleet = fleetMovedOn(this.master);
    for (const id of ids) {
      // Read back one at a time: only the jobs it plans for are held whole.
      const st = this.jobs.get(id)!;
      if (!jobId && !open.has(id) && !needsRedistribution(st)) continue;
      const waiting = [...st.plans.values()].find((p) => p.state === 'pending' && p.repeats === st.current.commandId);
      if (waiting) {
        plans.push(waiting);
        continue;
      }
      const fleet = await inFleet(st);
      const movedOn = (notInstalled: string[]) =>
        withFleet(
          movedOnTargets(st, notInstalled, this.jobs.summaries(), (k) => this.jobs.get(k)),
          notInstalled,
          fleet,
        );
      const r = buildPlan(st, this.relayId, (d) => this.depot.has(d), undefined, movedOn);
      if (!r.ok) {
        const { ok: _, ...why } = r;
        skipped.push(why);
        continue;
      }
      // A dry run shows the plan and leaves nothing behind.
      if (!opts.dryRun) this.record(r.plan);
      plans.push(r.plan);
    }
    return { plans, skipped };
  }

  /** Approves a pending plan and runs it; `now: false` records it approved for the relay's next start. */
  async approve(planId: string, by: string, now = true): Promise<Plan> {
    const { st, p } = this.find(planId);
    if (p.state !== 'pending')
      throw new FanoutError('FANOUT_ERR_PLAN_STATE', { planId, why: `it is ${p.state}, not pending` });
    if (p.repeats !== st.current.commandId || st.phase !== 'failed')
      throw new FanoutError('FANOUT_ERR_PLAN_STATE', {
        planId,
        why: `it is out of date: job ${st.jobId} is ${st.phase} under command ${st.current.commandId}; ask for a new plan`,
      });
    let original = authorityOf(st.current);
    if (!original)
      throw new FanoutError('FANOUT_ERR_PLAN_STATE', {
        planId,
        why: `job ${st.jobId} has no command signed by the master`,
      });
    // An expired original cannot be installed: the master signs the same header again, with new times.
    if (renewDue(original.header)) original = await this.master.renew(original.header.commandId);
    else if (!this.master.byLatestKey(original)) {
      // Signed before a key rotation: an endpoint wiped and enrolled since trusts only the later key.
      // Signed again when the master can be asked; else as it is, for the endpoints that trust it.
      const asIs = original;
      original = await this.master.renew(original.header.commandId).catch(() => asIs);
    }
    const cmd = commandFromPlan(st, p, by, original);
    const approved: Plan = { ...p, state: now ? 'running' : 'approved', approvedBy: by, commandId: cmd.commandId };
    this.record(approved);
    this.supersede(st, `plan ${p.planId} was approved for it`, p.planId);
    this.jobs.record(p.jobId, [
      { type: 'redistribution', at: new Date().toISOString(), command: cmd, planId, approvedBy: by },
    ]);
    if (now) this.distributor.start(p.jobId);
    return approved;
  }

  reject(planId: string, by: string): Plan {
    const { p } = this.find(planId);
    if (p.state !== 'pending')
      throw new FanoutError('FANOUT_ERR_PLAN_STATE', { planId, why: `it is ${p.state}, not pending` });
    const rejected: Plan = { ...p, state: 'rejected', approvedBy: by };
    this.record(rejected);
    return rejected;
  }

  /**
   * Approval of a plan this relay built and recorded, sent back unchanged: whoever edits its
   * packages, parameters or recipients on the way gets a refusal, not a redistribution.
   */
  async submit(plan: Plan, by: string): Promise<Plan> {
    const { p } = this.find(plan.planId);
    const substance = (x: Plan) =>
      canonicalJson({
        relayId: x.relayId,
        jobId: x.jobId,
        repeats: x.repeats,
        packages: x.packages,
        params: x.params,
        list: x.distributionList,
      });
    if (substance(plan) !== substance(p))
      throw new FanoutError('FANOUT_ERR_COMMAND_REFUSED', {
        commandId: p.repeats,
        why: `plan ${p.planId} differs from the one relay ${this.relayId} recorded; only a plan it built may be approved, unchanged`,
      });
    return this.approve(plan.planId, by);
  }

  /** On the relay's host while the relay is down: the plan built from the log now, approved for its next start. */
  async approveOffline(jobId: string, expectedList: readonly string[], by: string): Promise<Plan> {
    const { plans } = await this.plan(jobId);
    const p = plans[0];
    if (!p)
      throw new FanoutError('FANOUT_ERR_PLAN_STATE', {
        planId: '(none)',
        why: `job ${jobId} has nothing to redistribute now`,
      });
    if (p.distributionList.join() !== expectedList.join())
      throw new FanoutError('FANOUT_ERR_PLAN_STATE', {
        planId: p.planId,
        why: 'the job log changed since the plan was shown; run the tool again',
      });
    return this.approve(p.planId, by, false);
  }

  /** Pending plans of a job that something else has settled: they can no longer be approved. */
  private supersede(st: JobState, why: string, except?: string) {
    for (const p of st.plans.values())
      if (p.state === 'pending' && p.planId !== except) this.record({ ...p, state: 'superseded', approvedBy: why });
  }

  private record(plan: Plan) {
    this.jobs.record(plan.jobId, [{ type: 'plan', at: new Date().toISOString(), plan }]);
  }

  private find(planId: string) {
    const s = this.jobs.summaries().find((j) => j.plans.some((p) => p.planId === planId));
    const st = s && this.jobs.get(s.jobId);
    const p = st?.plans.get(planId);
    if (st && p) return { st, p };
    throw new FanoutError('FANOUT_ERR_PLAN_UNKNOWN', { planId, where: `relay ${this.relayId}` });
  }
}
