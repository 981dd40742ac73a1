// rateLimitKBps (DESIGN §13) on what a relay serves: all downloads of a job's content share one
// budget, so a thin site link carries at most that much however many endpoints fetch at once.
import { Counter, type Registry } from 'prom-client';
import type { RelayJobs } from './jobs.ts';

/** A shared pace: each chunk waits its turn so the total stays at `bytesPerSecond`. */
export class Pace {
  private next = 0;
  constructor(readonly bytesPerSecond: number) {}

  async take(bytes: number) {
    const now = Date.now();
    const start = Math.max(now, this.next);
    this.next = start + (bytes / this.bytesPerSecond) * 1000;
    if (start > now) await new Promise((r) => setTimeout(r, start - now));
  }
}

/** The lower of the caps given (KB/s), or none. */
export function lowest(...caps: unknown[]): number | undefined {
  const m = Math.min(...caps.map((c) => Number(c) || Number.POSITIVE_INFINITY));
  return Number.isFinite(m) ? m : undefined;
}

export class ServingCap {
  private readonly paces = new Map<string, Pace>();
  private relayPace?: Pace;
  private readonly bytes?: Counter;
  constructor(
    private readonly jobs: RelayJobs,
    /** The relay's own cap from the inventory (KB/s), on everything it serves. */
    private readonly relayKBps: () => number | undefined = () => undefined,
    registry?: Registry,
  ) {
    this.bytes =
      registry &&
      new Counter({
        name: 'fanout_relay_content_bytes_served_total',
        help: 'Bytes of content this relay sent to endpoints and child relays',
        registers: [registry],
      });
  }

  /** Counts what went out (what a redistribution plan's estimate is measured against). */
  readonly served = (n: number) => this.bytes?.inc(n);

  /** The pace for serving this content: the relay's cap, and the lowest rateLimitKBps of open jobs that hold it. */
  paceFor(digest: string): { take(bytes: number): Promise<void> } | undefined {
    const job = this.jobPace(digest);
    const kbps = this.relayKBps();
    if (kbps && this.relayPace?.bytesPerSecond !== kbps * 1024) this.relayPace = new Pace(kbps * 1024);
    const relay = kbps ? this.relayPace : undefined;
    if (!job || !relay) return job ?? relay;
    return { take: async (n: number) => (await relay.take(n), await job.take(n)) };
  }

  private jobPace(digest: string): Pace | undefined {
    let kbps: number | undefined;
    for (const st of this.jobs.open()) {
      const limit = Number(st.current.params.rateLimitKBps ?? 0);
      if (limit > 0 && st.current.packages.some((p) => p.digest === digest)) kbps = Math.min(kbps ?? limit, limit);
    }
    if (!kbps) return undefined;
    const rate = kbps * 1024;
    let pace = this.paces.get(digest);
    if (!pace || pace.bytesPerSecond !== rate) this.paces.set(digest, (pace = new Pace(rate)));
    return pace;
  }
}
