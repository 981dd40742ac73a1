// Where a relay holds its jobs: those that have not ended whole, every other one as its summary,
// read back whole from its log when something asks (and the last few of those kept).
import { ended, type JobSummary, summarize } from './job-summary.ts';
import type { JobState } from './state.ts';

/** Ended jobs read back lately (a plan, a late report, an operator's look): the last few stay whole. */
const RECENT = 4;

export class JobTable {
  /** Every job, in the log's order: the summary of an ended one, null for one held in `live`. */
  private readonly index = new Map<string, JobSummary | null>();
  private readonly live = new Map<string, JobState>();
  private readonly recent = new Map<string, JobState>();

  constructor(private readonly readBack: (jobId: string) => JobState | undefined) {}

  get size() {
    return this.index.size;
  }

  /** The whole job: held, or read back from its log. */
  get(jobId: string): JobState | undefined {
    const held = this.live.get(jobId);
    if (held) return held;
    if (!this.index.has(jobId)) return undefined;
    const st = this.recent.get(jobId) ?? this.readBack(jobId);
    if (st) this.remember(st);
    return st;
  }

  summary(jobId: string): JobSummary | undefined {
    const s = this.index.get(jobId);
    return s === null ? summarize(this.live.get(jobId)!) : s;
  }

  /** The summary of an ended job (what its summary file holds); undefined for one still open. */
  endedSummary(jobId: string) {
    return this.index.get(jobId) ?? undefined;
  }

  summaries(): JobSummary[] {
    return [...this.index].map(([jobId, s]) => s ?? summarize(this.live.get(jobId)!));
  }

  open(): IterableIterator<JobState> {
    return this.live.values();
  }

  /** An ended job known by its summary file alone. */
  keep(summary: JobSummary) {
    this.index.set(summary.jobId, summary);
  }

  /** A job's state after a change: held whole while open, as its summary once it has ended. */
  place(st: JobState) {
    if (ended(st.phase)) {
      this.live.delete(st.jobId);
      this.index.set(st.jobId, summarize(st));
      this.remember(st);
    } else {
      this.recent.delete(st.jobId);
      this.live.set(st.jobId, st);
      this.index.set(st.jobId, null);
    }
  }

  private remember(st: JobState) {
    this.recent.delete(st.jobId);
    this.recent.set(st.jobId, st);
    for (const jobId of this.recent.keys()) if (this.recent.size > RECENT) this.recent.delete(jobId);
  }
}
