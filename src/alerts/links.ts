// The resolve link in a ticket mail: the ticket id and an expiry, with an HMAC over both. Nothing
// secret is stored; a link past its expiry, or for another ticket, does not verify.
import { createHmac, timingSafeEqual } from 'node:crypto';

export class TicketLinks {
  constructor(
    private readonly secret: Buffer,
    readonly ttlMs: number,
  ) {}

  private mac(ticketId: string, exp: number) {
    return createHmac('sha256', this.secret).update(`resolve ${ticketId} ${exp}`).digest('base64url');
  }

  url(base: string, ticketId: string, now = Date.now()) {
    const exp = Math.floor((now + this.ttlMs) / 1000);
    return `${base}/tickets/${encodeURIComponent(ticketId)}/resolve?exp=${exp}&key=${this.mac(ticketId, exp)}`;
  }

  /** Why the link does not hold, or undefined when it does. */
  problem(ticketId: string, exp: string | undefined, key: string | undefined, now = Date.now()): string | undefined {
    const e = Number(exp);
    if (!key || !Number.isInteger(e)) return 'the link is incomplete';
    const want = Buffer.from(this.mac(ticketId, e));
    const got = Buffer.from(key);
    if (want.length !== got.length || !timingSafeEqual(want, got)) return 'the link is not valid for this ticket';
    if (e * 1000 < now) return `the link expired at ${new Date(e * 1000).toISOString()}`;
    return undefined;
  }
}
