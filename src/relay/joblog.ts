// The relay's job log: <data>/jobs/<jobId>.jsonl, append-only, fsync'd before anything is acknowledged.
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { DistributionCommand, Plan, TargetState } from '../protocol/types.ts';

export type JobLogRecord =
  | { type: 'command'; at: string; command: DistributionCommand }
  | { type: 'fetch'; at: string; event: 'started' | 'verified'; digest: string; bytes: number; from?: number }
  | {
      type: 'target';
      at: string;
      deviceId: string;
      state: TargetState;
      attempt: number;
      commandId: string;
      failureType?: string;
      error?: string;
    }
  | { type: 'failed'; at: string; commandId: string; failureType: string; message: string }
  | { type: 'plan'; at: string; plan: Plan }
  | { type: 'redistribution'; at: string; command: DistributionCommand; planId: string; approvedBy: string }
  | { type: 'complete'; at: string; commandId: string };

export class JobLog {
  readonly dir: string;
  constructor(
    dataDir: string,
    private readonly faults?: { throwIf(point: string): void },
  ) {
    this.dir = join(dataDir, 'jobs');
    mkdirSync(this.dir, { recursive: true });
  }

  path(jobId: string) {
    if (!/^[A-Za-z0-9._-]+$/.test(jobId)) throw new Error(`"${jobId}" is not a job id`);
    return join(this.dir, `${jobId}.jsonl`);
  }

  exists(jobId: string) {
    return existsSync(this.path(jobId));
  }

  /** Appends records and fsyncs: when this returns, they survive a crash. */
  append(jobId: string, ...records: JobLogRecord[]) {
    this.faults?.throwIf('relay.joblog.write');
    const fd = openSync(this.path(jobId), 'a');
    try {
      writeSync(fd, records.map((r) => JSON.stringify(r)).join('\n') + '\n');
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }

  read(jobId: string): JobLogRecord[] {
    const text = readFileSync(this.path(jobId), 'utf8');
    const out: JobLogRecord[] = [];
    for (const line of text.split('\n')) {
      if (!line.trim()) continue;
      try {
        out.push(JSON.parse(line));
      } catch {
        // A torn last line (crash mid-write, before fsync returned) was never acknowledged: skip it.
      }
    }
    return out;
  }

  jobIds(): string[] {
    return readdirSync(this.dir)
      .filter((f) => f.endsWith('.jsonl'))
      .map((f) => f.slice(0, -6))
      .sort();
  }
}

export interface TargetStatus {
  state: TargetState;
  attempt: number;
  failureType?: string;
  error?: string;
  at: string;
}
export type JobPhase = 'received' | 'fetching' | 'distributing' | 'complete' | 'failed';

/** What the log says now: the command in force, the first one, every target's last state. */
export interface JobLogState {
  jobId: string;
  original: DistributionCommand;
  current: DistributionCommand;
  targets: Map<string, TargetStatus>;
  verified: Set<string>;
  phase: JobPhase;
  failure?: { failureType: string; message: string };
  plans: Map<string, Plan>;
  redistributions: { commandId: string; planId: string; approvedBy: string; at: string; repeats?: string }[];
}

export function replay(jobId: string, records: JobLogRecord[]): JobLogState | undefined {
  let st: JobLogState | undefined;
  for (const r of records) {
    if (r.type === 'command') {
      if (st) continue; // the master's command is the first record; later copies are retries of the ack
      st = {
        jobId,
        original: r.command,
        current: r.command,
        targets: new Map(),
        verified: new Set(),
        phase: 'received',
        plans: new Map(),
        redistributions: [],
      };
      for (const d of r.command.distributionList) st.targets.set(d, { state: 'pending', attempt: 0, at: r.at });
      continue;
    }
    if (!st) continue;
    switch (r.type) {
      case 'fetch':
        if (r.event === 'verified') st.verified.add(r.digest);
        if (st.phase === 'received') st.phase = 'fetching';
        break;
      case 'target':
        st.targets.set(r.deviceId, {
          state: r.state,
          attempt: r.attempt,
          failureType: r.failureType,
          error: r.error,
          at: r.at,
        });
        if (st.phase === 'received' || st.phase === 'fetching') st.phase = 'distributing';
        break;
      case 'failed':
        if (r.commandId === st.current.commandId) {
          st.phase = 'failed';
          st.failure = { failureType: r.failureType, message: r.message };
        }
        break;
      case 'plan':
        st.plans.set(r.plan.planId, r.plan);
        break;
      case 'redistribution':
        st.current = r.command;
        st.phase = 'received';
        st.failure = undefined;
        for (const d of r.command.distributionList) st.targets.set(d, { state: 'pending', attempt: 0, at: r.at });
        st.redistributions.push({
          commandId: r.command.commandId,
          planId: r.planId,
          approvedBy: r.approvedBy,
          at: r.at,
          repeats: r.command.repeats,
        });
        break;
      case 'complete':
        if (r.commandId === st.current.commandId) st.phase = 'complete';
        break;
    }
  }
  if (st && st.phase !== 'complete' && st.phase !== 'failed') {
    // Every target of the command in force has ended: the job has ended too.
    const list = st.current.distributionList.map((d) => st!.targets.get(d)!);
    if (list.length && list.every((t) => t.state === 'installed')) st.phase = 'complete';
    else if (list.length && list.every((t) => t.state === 'installed' || t.state === 'failed')) st.phase = 'failed';
  }
  return st;
}
