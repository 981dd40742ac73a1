// One piece of work at a time on an endpoint (an assignment, a verification), in the order taken:
// they install into and hash the same folders. An assignment downloading, or waiting for its
// maintenance window, lends its turn: meanwhile only urgent work goes (a job with
// ignoreWindows=true, a verification), and the lender goes on as soon as that work is done, before
// anything else queued. Urgent work may lend in turn: the turn is lent until every lender is back.
export class Turns {
  private busy = false;
  private lent = 0;
  private readonly queue: { urgent: boolean; go: () => void }[] = [];

  /** Resolves when it is this work's turn; `release` ends the turn. */
  take(urgent: boolean): Promise<void> {
    return new Promise((go) => {
      this.queue.push({ urgent, go });
      this.next();
    });
  }

  release() {
    this.busy = false;
    this.next();
  }

  /** Runs `wait` with the turn lent to urgent work; resolves once the turn is back. */
  async lend<T>(wait: () => Promise<T>): Promise<T> {
    this.lent++;
    this.release();
    try {
      return await wait();
    } finally {
      this.lent--;
      await new Promise<void>((go) => {
        this.queue.unshift({ urgent: true, go });
        this.next();
      });
    }
  }

  private next() {
    if (this.busy) return;
    const i = this.lent ? this.queue.findIndex((q) => q.urgent) : this.queue.length ? 0 : -1;
    if (i < 0) return;
    const [q] = this.queue.splice(i, 1);
    this.busy = true;
    q.go();
  }
}
