// One timer per job for its command's deadline. Timers take at most ~24.8 days: a later deadline is
// reached in steps rather than firing at once.
import { deadlineAt } from '../protocol/durations.ts';
import type { DistributionCommand } from '../protocol/types.ts';
import type { RelayJobs } from './jobs.ts';
import type { JobState } from './state.ts';

const MAX_TIMER_MS = 2 ** 31 - 1;

export class Deadlines {
  private readonly timers = new Map<string, NodeJS.Timeout>();
  constructor(private readonly due: (jobId: string, commandId: string) => void) {}

  arm(jobId: string, cmd: DistributionCommand, fallbackMs: number) {
    this.clear(jobId);
    let at = deadlineAt(cmd.params.deadline ? String(cmd.params.deadline) : undefined, cmd.issuedAt, fallbackMs);
    // A redistribution keeps the original's parameters; an absolute deadline that has passed gives it an hour.
    if (cmd.kind === 'redistribute' && at <= Date.parse(cmd.issuedAt)) at = Date.parse(cmd.issuedAt) + 3_600_000;
    const step = () => {
      const left = at - Date.now();
      if (left > 0) this.timers.set(jobId, setTimeout(step, Math.min(left, MAX_TIMER_MS)));
      else {
        this.timers.delete(jobId);
        this.due(jobId, cmd.commandId);
      }
    };
    step();
  }

  clear(jobId: string) {
    clearTimeout(this.timers.get(jobId));
    this.timers.delete(jobId);
  }

  stop() {
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }
}

/** A deadline passed: before the content was in the depot the job fails; else every open target fails. */
export function endAtDeadline(jobs: RelayJobs, st: JobState) {
  if (st.phase !== 'distributing')
    return jobs.fail(st.jobId, 'DEADLINE', 'deadline passed before the content was in the depot');
  jobs.failOpen(st, 'DEADLINE', 'deadline passed before the target installed');
}
