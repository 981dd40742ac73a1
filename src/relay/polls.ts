// When a relay's endpoints last asked it for work, passed on to the master: the fleet view's "last
// seen" of an endpoint is its last poll, not only its last install step.
import type { Reporter } from './reporter.ts';

export class Polls {
  private polls = new Map<string, string>();
  private readonly heard = new Set<string>();
  private passed = 0;

  constructor(private readonly reporter: Pick<Reporter, 'seen'>) {}

  /** Passed on at once the first time an endpoint asks, then with the others at most once a minute. */
  asked(deviceId: string) {
    this.polls.set(deviceId, new Date().toISOString());
    if (this.heard.has(deviceId) && Date.now() - this.passed < 60_000) return;
    for (const id of this.polls.keys()) this.heard.add(id);
    this.reporter.seen(this.polls);
    this.polls = new Map();
    this.passed = Date.now();
  }
}
