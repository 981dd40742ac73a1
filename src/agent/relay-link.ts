// The agent's relay, and the fallbacks it turns to (DESIGN §13): a relay unreachable for
// `failoverAfter` is left for the next one the inventory names; that relay tells the master, which
// moves this endpoint's open targets there.
import type { Logger } from '../common/log.ts';
import { Client, type ClientTls } from '../protocol/client.ts';

export class RelayLink {
  client: Client;
  /** The relays to turn to, in order (from enrollment). */
  fallbacks: { id: string; url: string }[] = [];
  private since?: number;

  constructor(
    url: string,
    private readonly token: string,
    private readonly tls: ClientTls | undefined,
    private readonly failoverAfterMs: number,
    private readonly log: Logger,
  ) {
    this.client = this.clientFor(url);
  }

  private clientFor(url: string) {
    // An endpoint's answers are small (assignments with their proofs): a relay sending more is refused.
    return new Client({ baseUrl: url, token: this.token, tls: this.tls, maxAnswerBytes: 4 * 1024 * 1024 });
  }

  ok() {
    this.since = undefined;
  }

  /** Counts a failure; true when it turned to the next relay (the caller enrolls there). */
  failed(now = Date.now()): boolean {
    this.since ??= now;
    const next = this.fallbacks.find((f) => f.url !== this.client.baseUrl);
    if (!next || now - this.since < this.failoverAfterMs) return false;
    this.log.warn(
      { from: this.client.baseUrl, to: next.url, relay: next.id, afterMs: now - this.since },
      'relay unreachable; turning to a fallback relay',
    );
    // The one left goes to the end: if the fallback dies too, the first relay is tried again.
    const left = this.client.baseUrl;
    this.fallbacks = [
      ...this.fallbacks.filter((f) => f !== next),
      next,
      ...(this.fallbacks.some((f) => f.url === left) ? [] : [{ id: 'first', url: left }]),
    ];
    this.client = this.clientFor(next.url);
    this.since = undefined;
    return true;
  }
}
