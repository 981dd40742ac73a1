// What a job log means: a fold over its records. The same `apply` rebuilds a job at start (replay)
// and moves it on while it runs, so the relay's memory is always what its log says.
import type { FailureType } from '../protocol/failure-types.ts';
import { jobEnd } from '../protocol/job-end.ts';
import type { DistributionCommand, Plan, RelayJobState, TargetState } from '../protocol/types.ts';
import type { JobLogRecord } from './joblog.ts';

export interface TargetStatus {
  state: TargetState;
  attempt: number;
  failureType?: FailureType;
  error?: string;
  at: string;
  trees?: Record<string, string>;
  /** The endpoint downloaded and verified this job's content (it went on to wait or install): a
   * redistribution moves no bytes to it, since its cache holds them. */
  held?: true;
}

export interface JobState {
  jobId: string;
  /** The master's command: the first record of the log. */
  original: DistributionCommand;
  /** The command in force: the original, or the last approved redistribution. */
  current: DistributionCommand;
  targets: Map<string, TargetStatus>;
  verified: Set<string>;
  phase: RelayJobState;
  failure?: { failureType: FailureType; message: string };
  plans: Map<string, Plan>;
  redistributions: { commandId: string; planId: string; approvedBy: string; at: string; repeats?: string }[];
  /** The command in force: its targets as a set, and how many of them have ended (kept as records
   * apply, so a report costs the same at 10 targets or 10,000). */
  tally: { members: Set<string>; ended: number; failed: number };
}

const tallyOf = (list: readonly string[]) => ({ members: new Set(list), ended: 0, failed: 0 });
const endedState = (s: string | undefined) => s === 'installed' || s === 'failed';

/**
 * The next state after one record. No I/O and nothing but its inputs: it owns the state it is
 * handed (and may reuse its maps for speed, since a job can have thousands of targets), so callers
 * keep only the state it returns.
 */
export function apply(st: JobState | undefined, r: JobLogRecord, jobId = st?.jobId ?? ''): JobState | undefined {
  if (r.type === 'command') {
    // The master's command is the first record; later copies are retries of the acknowledgement.
    if (st) return st;
    const targets = new Map<string, TargetStatus>();
    for (const d of r.command.distributionList) targets.set(d, { state: 'pending', attempt: 0, at: r.at });
    return {
      jobId: jobId || r.command.jobId,
      original: r.command,
      current: r.command,
      targets,
      verified: new Set(),
      phase: 'received',
      plans: new Map(),
      redistributions: [],
      tally: tallyOf(r.command.distributionList),
    };
  }
  if (!st) return st;
  switch (r.type) {
    case 'fetch':
      if (r.event === 'verified') st.verified.add(r.digest);
      if (st.phase === 'received') st.phase = 'fetching';
      return st;
    case 'target': {
      const before = st.targets.get(r.deviceId);
      const held =
        ['waiting_window', 'installing', 'installed'].includes(r.state) ||
        (before?.held && r.failureType !== 'DIGEST_MISMATCH');
      if (st.tally.members.has(r.deviceId)) {
        st.tally.ended += Number(endedState(r.state)) - Number(endedState(before?.state));
        st.tally.failed += Number(r.state === 'failed') - Number(before?.state === 'failed');
      }
      st.targets.set(r.deviceId, {
        ...(held ? { held: true as const } : {}),
        state: r.state,
        attempt: r.attempt,
        failureType: r.failureType,
        error: r.error,
        at: r.at,
        ...(r.trees ? { trees: r.trees } : {}),
      });
      if (st.phase === 'received' || st.phase === 'fetching') st.phase = 'distributing';
      return settle(st);
    }
    case 'failed':
      if (r.commandId === st.current.commandId) {
        st.phase = 'failed';
        st.failure = { failureType: r.failureType, message: r.message };
      }
      return st;
    case 'plan':
      st.plans.set(r.plan.planId, r.plan);
      return st;
    case 'redistribution':
      st.current = r.command;
      st.phase = 'received';
      st.failure = undefined;
      for (const d of r.command.distributionList) st.targets.set(d, { state: 'pending', attempt: 0, at: r.at });
      st.tally = tallyOf(r.command.distributionList);
      st.redistributions.push({
        commandId: r.command.commandId,
        planId: r.planId,
        approvedBy: r.approvedBy,
        at: r.at,
        repeats: r.command.repeats,
      });
      return st;
    case 'complete':
      if (r.commandId === st.current.commandId) st.phase = 'complete';
      return st;
  }
}

/** A job whose every target of the command in force has ended has ended too (protocol/job-end.ts). */
function settle(st: JobState): JobState {
  // A complete job opens again when a target is found drifted (DESIGN §17).
  if (st.phase !== 'distributing' && st.phase !== 'failed' && st.phase !== 'complete') return st;
  const { members, ended, failed } = st.tally;
  const end = jobEnd({ targets: members.size, ended, failed });
  // A relay-level failure stands until a redistribution, unless every endpoint installed anyway.
  if (st.failure) {
    if (end === 'complete') st.phase = 'complete';
    return st;
  }
  st.phase = end ?? 'distributing';
  return st;
}

export const replay = (jobId: string, records: JobLogRecord[]): JobState | undefined =>
  records.reduce<JobState | undefined>((st, r) => apply(st, r, jobId), undefined);

/** The targets of the command in force that have not ended. */
export const openTargets = (st: JobState) =>
  st.current.distributionList.filter((d) => !['installed', 'failed'].includes(st.targets.get(d)?.state ?? 'pending'));

/** A `failed` record, all with one failure, for each target of the command in force still open. */
export const failOpenTargets = (
  st: JobState,
  at: string,
  commandId: string,
  failureType: FailureType,
  error: string,
): Extract<JobLogRecord, { type: 'target' }>[] =>
  openTargets(st).map((deviceId) => ({
    type: 'target' as const,
    at,
    deviceId,
    state: 'failed',
    attempt: st.targets.get(deviceId)!.attempt,
    commandId,
    failureType,
    error,
  }));
