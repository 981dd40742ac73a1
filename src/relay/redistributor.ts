// The relay side of the redistribution tool: plans kept in the job log, approval hands them to the manager.
import { FanoutError } from '../protocol/errors.ts';
import type { Plan } from '../protocol/types.ts';
import { buildPlan, commandFromPlan, needsRedistribution } from '../redistribute/plan.ts';
import type { Depot } from './depot.ts';
import type { DistributionManager } from './manager.ts';

export class Redistributor {
  constructor(
    private readonly relayId: string,
    private readonly manager: DistributionManager,
    private readonly depot: Depot,
    /** Jobs with open failed-distribution records for this relay at the master (empty when it cannot be asked). */
    private readonly openAtMaster: () => Promise<string[]> = async () => [],
  ) {}

  list(): Plan[] {
    return this.manager
      .all()
      .flatMap((st) => [...st.plans.values()])
      .sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  /**
   * Plans for one job, or else for the jobs the master has open failed-distribution records of and
   * every failed job in the log; a plan already waiting is returned, not duplicated.
   */
  async plan(jobId?: string) {
    let jobs: ReturnType<DistributionManager['get']>[];
    if (jobId) {
      jobs = [this.manager.get(jobId)];
      if (!jobs[0])
        throw new FanoutError('FANOUT_ERR_JOB_UNKNOWN', `job "${jobId}" is not in relay ${this.relayId}'s job log`);
    } else {
      const open = new Set(await this.openAtMaster().catch(() => []));
      jobs = this.manager.all().filter((st) => open.has(st.jobId) || needsRedistribution(st));
    }
    const plans: Plan[] = [];
    const skipped: { jobId: string; reason: string }[] = [];
    for (const st of jobs) {
      const waiting = [...st!.plans.values()].find((p) => p.state === 'pending' && p.repeats === st!.current.commandId);
      if (waiting) {
        plans.push(waiting);
        continue;
      }
      const r = buildPlan(st!, this.relayId, (d) => this.depot.has(d));
      if (!r.ok) {
        skipped.push({ jobId: r.jobId, reason: r.reason });
        continue;
      }
      this.manager.recordPlan(r.plan);
      plans.push(r.plan);
    }
    return { plans, skipped };
  }

  private find(planId: string) {
    for (const st of this.manager.all()) {
      const p = st.plans.get(planId);
      if (p) return { st, p };
    }
    throw new FanoutError('FANOUT_ERR_PLAN_UNKNOWN', `plan "${planId}" is not known to relay ${this.relayId}`);
  }

  approve(planId: string, by: string): Plan {
    const { st, p } = this.find(planId);
    if (p.state !== 'pending')
      throw new FanoutError('FANOUT_ERR_PLAN_STATE', `plan ${planId} is ${p.state}, not pending`);
    if (p.repeats !== st.current.commandId || st.phase !== 'failed')
      throw new FanoutError(
        'FANOUT_ERR_PLAN_STATE',
        `plan ${planId} is out of date: job ${st.jobId} is ${st.phase} under command ${st.current.commandId}; ask for a new plan`,
      );
    const cmd = commandFromPlan(st, p, by);
    const approved: Plan = { ...p, state: 'running', approvedBy: by, commandId: cmd.commandId };
    this.manager.recordPlan(approved);
    this.manager.runRedistribution(approved, cmd, by);
    return approved;
  }

  reject(planId: string, by: string): Plan {
    const { p } = this.find(planId);
    if (p.state !== 'pending')
      throw new FanoutError('FANOUT_ERR_PLAN_STATE', `plan ${planId} is ${p.state}, not pending`);
    const rejected: Plan = { ...p, state: 'rejected', approvedBy: by };
    this.manager.recordPlan(rejected);
    return rejected;
  }

  /** A plan built elsewhere from this relay's log: checked against the log as it is now, then approved. */
  submit(plan: Plan, by: string): Plan {
    const st = this.manager.get(plan.jobId);
    if (!st)
      throw new FanoutError('FANOUT_ERR_JOB_UNKNOWN', `job "${plan.jobId}" is not in relay ${this.relayId}'s job log`);
    const fresh = buildPlan(st, this.relayId, (d) => this.depot.has(d));
    if (!fresh.ok) throw new FanoutError('FANOUT_ERR_PLAN_STATE', fresh.reason);
    if (fresh.plan.repeats !== plan.repeats || fresh.plan.distributionList.join() !== plan.distributionList.join())
      throw new FanoutError('FANOUT_ERR_PLAN_STATE', 'the job log changed since the plan was built; build it again');
    this.manager.recordPlan({ ...plan, relayId: this.relayId, state: 'pending' });
    return this.approve(plan.planId, by);
  }
}
