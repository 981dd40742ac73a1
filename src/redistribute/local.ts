// The redistribution tool on the relay's host (`--data DIR`): plans read straight from the job log,
// and, while the relay is down, an approved plan written into the log for the relay's next start.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Faults } from '../common/faults.ts';
import type { Plan } from '../protocol/types.ts';
import { Depot } from '../relay/depot.ts';
import { JobLog } from '../relay/joblog.ts';
import { buildPlan, commandFromPlan, needsRedistribution } from '../relay/plan.ts';
import { replay } from '../relay/state.ts';

export class NotInJobLog extends Error {
  override name = 'NotInJobLog';
}

/** What the relay wrote about itself when it started: its id, URL and process. */
export function relayInfo(data: string): { id: string; url: string; pid: number } | undefined {
  const f = join(data, 'relay.json');
  return existsSync(f) ? JSON.parse(readFileSync(f, 'utf8')) : undefined;
}

export const relayAdminToken = (data: string) => {
  const f = join(data, 'admin.token');
  return existsSync(f) ? readFileSync(f, 'utf8').trim() : undefined;
};

/** Plans for one job, or for every failed job in the log; nothing is recorded. */
export function plansFromLog(data: string, relayId: string, jobId?: string) {
  const log = new JobLog(data);
  const depot = new Depot(data, new Faults(false));
  if (jobId && !log.exists(jobId)) throw new NotInJobLog(`job ${jobId} is not in ${join(data, 'jobs')}`);
  const plans: Plan[] = [];
  const skipped: { jobId: string; reason: string }[] = [];
  for (const id of jobId ? [jobId] : log.jobIds()) {
    const st = replay(id, log.read(id));
    if (!st || (!jobId && !needsRedistribution(st))) continue;
    const r = buildPlan(st, relayId, (d) => depot.has(d));
    if (r.ok) plans.push(r.plan);
    else skipped.push({ jobId: r.jobId, reason: r.reason });
  }
  return { plans, skipped };
}

/** The relay is down: the approval goes into its job log, and runs when the relay starts. */
export function approveInLog(data: string, plan: Plan, approvedBy: string): Plan {
  const log = new JobLog(data);
  const st = replay(plan.jobId, log.read(plan.jobId));
  if (!st) throw new NotInJobLog(`job ${plan.jobId} is not in ${join(data, 'jobs')}`);
  const cmd = commandFromPlan(st, plan, approvedBy);
  const approved: Plan = { ...plan, state: 'approved', approvedBy, commandId: cmd.commandId };
  const at = new Date().toISOString();
  log.append(plan.jobId, [
    { type: 'plan', at, plan: approved },
    { type: 'redistribution', at, command: cmd, planId: plan.planId, approvedBy },
  ]);
  return approved;
}
