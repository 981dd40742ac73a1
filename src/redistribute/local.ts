// The redistribution tool on the relay's host (`--data DIR`): plans read straight from the job log,
// and, while the relay is down, an approved plan written into the log for the relay's next start.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Faults } from '../common/faults.ts';
import type { Logger } from '../common/log.ts';
import { clientTls } from '../common/tls.ts';
import { Client } from '../protocol/client.ts';
import type { Plan, SkippedJob } from '../protocol/types.ts';
import { Depot } from '../relay/depot.ts';
import type { Distributor } from '../relay/distribution.ts';
import { MasterEnrollment } from '../relay/enroll.ts';
import { type JobSummary, readSummary, summarize } from '../relay/job-summary.ts';
import { JobLog } from '../relay/joblog.ts';
import { RelayJobs } from '../relay/jobs.ts';
import { movedOnTargets, withFleet } from '../relay/moved-on.ts';
import { buildPlan, needsRedistribution } from '../relay/plan.ts';
import { fleetMovedOn, type MasterForPlans, masterForPlans, offline } from '../relay/plan-master.ts';
import { Redistributor } from '../relay/redistributor.ts';
import { MASTER_TOKEN_FILE, relayInfo } from '../relay/relay-info.ts';
import type { Reporter } from '../relay/reporter.ts';
import { replay } from '../relay/state.ts';

export { relayInfo };

export class NotInJobLog extends Error {
  override name = 'NotInJobLog';
}

/**
 * The relay's own way to its master (DATA/relay.json and DATA/master.token, written at its start):
 * while the relay is down, the tool on its host asks the master what the relay would (its open
 * records, targets that moved on through another relay, a fresh signature for an expired command).
 */
export function masterOfRelay(data: string): { url: string; master: MasterForPlans } | undefined {
  const info = relayInfo(data);
  const tokenFile = join(data, MASTER_TOKEN_FILE);
  if (!info?.master?.length || !existsSync(tokenFile)) return undefined;
  const [first, ...fallbacks] = info.master;
  const token = readFileSync(tokenFile, 'utf8').trim();
  const client = new Client({ baseUrl: first, fallbacks, token, tls: clientTls(info.tls ?? {}) });
  return { url: first, master: masterForPlans(client, new MasterEnrollment(info.id, data, client)) };
}

export const relayAdminToken = (data: string) => {
  const f = join(data, 'admin.token');
  return existsSync(f) ? readFileSync(f, 'utf8').trim() : undefined;
};

/**
 * Plans for one job, or for every failed job in the log and every job the master holds open
 * records of; nothing is recorded. Targets that moved on are those of the log, and the master's.
 */
export async function plansFromLog(data: string, relayId: string, jobId?: string, master = offline) {
  const log = new JobLog(data);
  const depot = new Depot(data, new Faults(false));
  if (jobId && !log.exists(jobId)) throw new NotInJobLog(`job ${jobId} is not in ${join(data, 'jobs')}`);
  const plans: Plan[] = [];
  const skipped: SkippedJob[] = [];
  const ids = log.jobIds();
  const whole = (id: string) => replay(id, log.read(id));
  // The jobs after this one, as the relay lists them (their summary files, else their logs), each
  // read once however many failed jobs are planned.
  const summaries = new Map<string, JobSummary | undefined>();
  const summaryOf = (k: string) => {
    if (!summaries.has(k)) summaries.set(k, readSummary(log, k) ?? ((st) => st && summarize(st))(whole(k)));
    return summaries.get(k);
  };
  const later = (id: string) => ids.slice(ids.indexOf(id) + 1).flatMap((k) => summaryOf(k) ?? []);
  const open = new Set(jobId ? [] : await master.openFailed().catch(() => []));
  const inFleet = fleetMovedOn(master);
  for (const id of jobId ? [jobId] : ids) {
    // A complete job's summary file says so without reading its log.
    if (!jobId && readSummary(log, id)?.phase === 'complete') continue;
    const st = whole(id);
    if (!st || (!jobId && !open.has(id) && !needsRedistribution(st))) continue;
    const fleet = await inFleet(st);
    const movedOn = (notInstalled: string[]) =>
      withFleet(movedOnTargets(st, notInstalled, later(id), whole), notInstalled, fleet);
    const r = buildPlan(st, relayId, (d) => depot.has(d), undefined, movedOn);
    if (r.ok) plans.push(r.plan);
    else skipped.push({ jobId: r.jobId, reason: r.reason });
  }
  return { plans, skipped };
}

/** Whether the relay that wrote DATA/relay.json still runs (its process answers signal 0). */
export function relayRunning(data: string): boolean {
  const info = relayInfo(data);
  if (!info?.pid) return false;
  try {
    process.kill(info.pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The relay is down: its own Redistributor, over its job log, records and approves the plan without
 * running it ('approved'); the relay runs the redistribution when it starts, like any in the log.
 */
export function approveInLog(data: string, plan: Plan, approvedBy: string, master = offline): Promise<Plan> {
  const log = new JobLog(data);
  if (!log.exists(plan.jobId)) throw new NotInJobLog(`job ${plan.jobId} is not in ${join(data, 'jobs')}`);
  const silent = { job() {}, target() {}, plan() {}, alert() {} } as unknown as Reporter;
  const quiet = { info() {}, warn() {}, error() {} } as unknown as Logger;
  const jobs = new RelayJobs(quiet, log, silent);
  jobs.load();
  const notRunning = { start() {} } as unknown as Distributor;
  const redistributor = new Redistributor(plan.relayId, jobs, notRunning, new Depot(data, new Faults(false)), master);
  return redistributor.approveOffline(plan.jobId, plan.distributionList, approvedBy);
}
