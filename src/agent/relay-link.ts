// The agent's relay, and the fallbacks it turns to (DESIGN §13): a relay unreachable for
// `failoverAfter` is left for the next one the inventory names; that relay tells the master, which
// moves this endpoint's open targets there.
import type { Logger } from '../common/log.ts';
import { Client, type ClientTls } from '../protocol/client.ts';

export class RelayLink {
  client: Client;
  /** The relays to turn to after this endpoint's own, in order (from enrollment). */
  private fallbacks: { id: string; url: string }[] = [];
  private since?: number;
  /** Until its first answer at a relay (at start, or after a turn): that relay takes this endpoint's open targets. */
  arrived = true;

  constructor(
    /** This endpoint's own relay (--relay): always among those it turns to. */
    private readonly home: string,
    private readonly token: string,
    private readonly tls: ClientTls | undefined,
    private readonly failoverAfterMs: number,
    private readonly log: Logger,
  ) {
    this.client = this.clientFor(home);
  }

  /**
   * The fallbacks a relay named at enrollment. A fallback relay names only the fallbacks, not this
   * endpoint's own relay, which stays in the ring: an endpoint on a fallback that dies goes back.
   */
  learn(fallbacks: { id: string; url: string }[]) {
    this.fallbacks = fallbacks.filter((f) => f.url !== this.home);
  }

  private clientFor(url: string) {
    // An endpoint's answers are small (assignments with their proofs): a relay sending more is refused.
    return new Client({ baseUrl: url, token: this.token, tls: this.tls, maxAnswerBytes: 4 * 1024 * 1024 });
  }

  ok() {
    this.since = undefined;
    this.arrived = false;
  }

  /** Counts a failure; true when it turned to the next relay (the caller enrolls there). */
  failed(now = Date.now()): boolean {
    this.since ??= now;
    // Round the ring: its own relay, then each fallback in order, then its own again.
    const ring = [{ id: 'its own relay', url: this.home }, ...this.fallbacks];
    const next = ring[(ring.findIndex((f) => f.url === this.client.baseUrl) + 1) % ring.length];
    if (next.url === this.client.baseUrl || now - this.since < this.failoverAfterMs) return false;
    this.log.warn(
      { from: this.client.baseUrl, to: next.url, relay: next.id, afterMs: now - this.since },
      'relay unreachable; turning to a fallback relay',
    );
    this.client = this.clientFor(next.url);
    this.since = undefined;
    this.arrived = true;
    return true;
  }
}
