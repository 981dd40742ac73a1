// What a relay keeps of a job that has ended: a few hundred bytes instead of its every target. The
// job log stays the truth; an ended job's whole state is read back from it when something asks.
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import type { FailureType } from '../protocol/failure-types.ts';
import type { DistributionCommand, PackageRef, Plan, RelayJobState } from '../protocol/types.ts';
import { deviceFilter } from './device-filter.ts';
import type { JobLog } from './joblog.ts';
import type { JobState } from './state.ts';

export interface JobSummary {
  jobId: string;
  phase: RelayJobState;
  failure?: { failureType: FailureType; message: string };
  /** The command in force, and every command the job has had (the original first). */
  commandId: string;
  commandIds: string[];
  kind: DistributionCommand['kind'];
  packages: PackageRef[];
  /** Targets of the command in force: how many, and how many of them installed and failed. */
  targets: number;
  installed: number;
  failed: number;
  plans: Plan[];
  redistributions: JobState['redistributions'];
  /** An ended job's failed endpoints (device-filter.ts): only they can change it with a late report. */
  failedFilter?: string;
  /** An ended job's installed endpoints: only they can have drifted from what it installed. */
  installedFilter?: string;
}

/** Received, fetching or distributing: the job is held whole in memory until it ends. */
export const ended = (phase: RelayJobState) => phase === 'complete' || phase === 'failed';

export function summarize(st: JobState): JobSummary {
  return {
    jobId: st.jobId,
    phase: st.phase,
    ...(st.failure ? { failure: st.failure } : {}),
    commandId: st.current.commandId,
    commandIds: [st.original.commandId, ...st.redistributions.map((r) => r.commandId)],
    kind: st.current.kind,
    packages: st.current.packages,
    targets: st.tally.members.size,
    installed: st.tally.ended - st.tally.failed,
    failed: st.tally.failed,
    plans: [...st.plans.values()],
    redistributions: st.redistributions,
    ...(ended(st.phase) ? filters(st) : {}),
  };
}

function filters(st: JobState) {
  const of = (state: string) => st.current.distributionList.filter((d) => st.targets.get(d)?.state === state);
  return {
    ...(st.tally.failed ? { failedFilter: deviceFilter(of('failed')) } : {}),
    installedFilter: deviceFilter(of('installed')),
  };
}

/**
 * The summary file of an ended job, written once the master has acknowledged everything its log
 * says: it stands for the log only while the log is as long as it was then (`logBytes`).
 */
export interface SummaryFile {
  logBytes: number;
  summary: JobSummary;
}

const summaryPath = (log: JobLog, jobId: string) => log.path(jobId).replace(/\.jsonl$/, '.summary.json');

/** A summary as this relay writes it (a damaged file is read as none). */
const whole = (s: JobSummary | undefined, jobId: string) =>
  s?.jobId === jobId &&
  typeof s.commandId === 'string' &&
  [s.commandIds, s.packages, s.plans, s.redistributions].every(Array.isArray) &&
  [s.targets, s.installed, s.failed].every(Number.isInteger) &&
  (s.failedFilter === undefined || typeof s.failedFilter === 'string') &&
  typeof s.installedFilter === 'string';

/** The job's summary file, if it still stands for the log (the log has not grown since). */
export function readSummary(log: JobLog, jobId: string): JobSummary | undefined {
  try {
    const f = JSON.parse(readFileSync(summaryPath(log, jobId), 'utf8')) as SummaryFile;
    return f.logBytes === log.size(jobId) && whole(f.summary, jobId) ? f.summary : undefined;
  } catch {
    return undefined; // none, torn or stale: the log is read instead
  }
}

/** Written whole or not at all; losing it costs only a replay of the log at the next start. */
export function writeSummary(log: JobLog, summary: JobSummary) {
  const path = summaryPath(log, summary.jobId);
  const file: SummaryFile = { logBytes: log.size(summary.jobId), summary };
  writeFileSync(`${path}.tmp`, JSON.stringify(file));
  renameSync(`${path}.tmp`, path);
}
