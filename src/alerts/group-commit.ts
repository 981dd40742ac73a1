// Group commit: requests that arrive while a transaction commits share the next one (one fsync for
// all of them). Each request is still answered only after its alerts are on disk. A synchronous
// driver (better-sqlite3) runs a whole transaction inside one turn of the event loop, so the batch is
// taken only after the loop has read every request waiting on the sockets (setImmediate), not when
// the first one arrives.
export class GroupCommit<I, O> {
  private queue: { items: I[]; resolve: (o: O[]) => void; reject: (e: unknown) => void }[] = [];
  private running = false;

  /** `commit` stores a list of items in one transaction and returns one result per item, in order. */
  constructor(
    private readonly commit: (items: I[]) => Promise<O[]>,
    private readonly maxItems = 5000,
  ) {}

  submit(items: I[]): Promise<O[]> {
    return new Promise((resolve, reject) => {
      this.queue.push({ items, resolve, reject });
      if (!this.running) {
        this.running = true;
        setImmediate(() => void this.drain());
      }
    });
  }

  private async drain() {
    while (this.queue.length) {
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
}
