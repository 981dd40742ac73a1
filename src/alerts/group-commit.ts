// Group commit: requests that arrive while a transaction commits share the next one (one fsync for
// all of them). Each request is still answered only after its alerts are on disk. A synchronous
// driver (better-sqlite3) runs a whole transaction inside one turn of the event loop, so the batch is
// taken only after the loop has read every request waiting on the sockets (setImmediate), not when
// the first one arrives.
//
// Clients that each wait for their answer before sending again fall into cohorts: half of them are
// answered while the other half commits, and every commit carries half the fsyncs' worth of alerts.
// So, as PostgreSQL's commit_delay does when other transactions are active, a batch waits up to a
// millisecond for the sources (connections) that keep coming back: those that submitted twice in the
// last 100 ms and have not submitted again yet; asleep on a timer, woken by each submit, not spinning.
// A lone client never waits, nor does a batch for relays that send an alert now and then.
type Request<I, O> = { items: I[]; from?: object; resolve: (o: O[]) => void; reject: (e: unknown) => void };

export class GroupCommit<I, O> {
  private queue: Request<I, O>[] = [];
  private running = false;
  /** When each source submitted last and the time before: those twice within ACTIVE_MS are waited for. */
  private readonly seen = new Map<object, { at: number; before: number }>();
  /** Set while a batch waits: each submit asks it to look again. */
  private wake?: () => void;

  /** `commit` stores a list of items in one transaction and returns one result per item, in order. */
  constructor(
    private readonly commit: (items: I[]) => Promise<O[]>,
    private readonly maxItems = 5000,
    private readonly gatherMs = 1,
  ) {}

  /** `from` names the source (a connection), so that a batch can wait for the others active lately. */
  submit(items: I[], from?: object): Promise<O[]> {
    if (from) this.seen.set(from, { at: performance.now(), before: this.seen.get(from)?.at ?? -Infinity });
    return new Promise((resolve, reject) => {
      this.queue.push({ items, from, resolve, reject });
      this.wake?.();
      if (!this.running) {
        this.running = true;
        setImmediate(() => void this.drain());
      }
    });
  }

  private async drain() {
    while (this.queue.length) {
      await this.gather();
      const group: typeof this.queue = [];
      let n = 0;
      while (this.queue.length && (group.length === 0 || n + this.queue[0].items.length <= this.maxItems)) {
        const r = this.queue.shift()!;
        group.push(r);
        n += r.items.length;
      }
      try {
        const out = await this.commit(group.flatMap((r) => r.items));
        let at = 0;
        for (const r of group) {
          r.resolve(out.slice(at, at + r.items.length));
          at += r.items.length;
        }
      } catch (e) {
        // One request's bad luck must not fail the others: retry each on its own.
        if (group.length === 1) group[0].reject(e);
        else for (const r of group) await this.commit(r.items).then(r.resolve, r.reject);
      }
      // Let the requests that came in meanwhile be read before the next batch is taken.
      if (this.queue.length) await new Promise((r) => setImmediate(r));
    }
    this.running = false;
  }

  /**
   * Waits, the event loop reading sockets meanwhile, until every source that keeps coming back has
   * submitted, or gatherMs has passed.
   */
  private async gather() {
    const start = performance.now();
    let active = 0;
    for (const [from, { at, before }] of this.seen) {
      if (start - at > ACTIVE_MS) this.seen.delete(from);
      else if (start - before <= ACTIVE_MS) active++;
    }
    const enough = () =>
      new Set(this.queue.flatMap((r) => (r.from ? [r.from] : []))).size >= active ||
      this.queue.reduce((n, r) => n + r.items.length, 0) >= this.maxItems;
    if (active < 2 || enough()) return;
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, this.gatherMs);
      this.wake = () => enough() && done();
    });
    // What the same read of the sockets brought with the last one goes too.
    await new Promise((r) => setImmediate(r));
  }
}

const ACTIVE_MS = 100;
