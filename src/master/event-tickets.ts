// The dashboard's event stream cannot send headers (EventSource), and a token in a URL ends up in
// logs and history. So the page asks (with its token, in a header) for a ticket: signed, naming who
// it is for, good for connecting within a minute; the stream's URL carries only that.
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { bearer, type Principal } from '../common/auth.ts';
import { FanoutError } from '../protocol/errors.ts';

const TTL_MS = 60_000;

export class EventTickets {
  constructor(
    /** Every master on the database has it (shared-secrets.ts), so a ticket from one works at another. */
    private readonly secret: Buffer,
  ) {}

  private mac(payload: string) {
    return createHmac('sha256', this.secret).update(payload).digest('base64url');
  }

  issue(p: Principal) {
    const payload = Buffer.from(JSON.stringify({ p, exp: Date.now() + TTL_MS })).toString('base64url');
    return { ticket: `${payload}.${this.mac(payload)}`, expiresInMs: TTL_MS };
  }

  /** The principal a ticket was issued to, or a refusal. */
  check(ticket: string): Principal {
    const [payload, mac] = ticket.split('.');
    const want = payload ? Buffer.from(this.mac(payload)) : Buffer.alloc(0);
    const got = Buffer.from(mac ?? '');
    if (!payload || want.length !== got.length || !timingSafeEqual(want, got))
      throw new FanoutError('FANOUT_ERR_AUTH_INVALID', { server: 'the master', hint: 'ask for a new event ticket' });
    const { p, exp } = JSON.parse(Buffer.from(payload, 'base64url').toString()) as { p: Principal; exp: number };
    if (Date.now() > exp)
      throw new FanoutError('FANOUT_ERR_AUTH_INVALID', {
        server: 'the master',
        hint: 'the event ticket expired; ask for a new one',
      });
    return p;
  }

  /** The events scope: a ticket in the URL, or a token in the Authorization header. */
  authenticate(byHeader: (req: FastifyRequest) => Promise<Principal>) {
    return async (req: FastifyRequest): Promise<Principal> => {
      const t = (req.query as { ticket?: unknown } | undefined)?.ticket;
      if (typeof t === 'string') return this.check(t);
      bearer(req); // a clear "missing" before anything else
      return byHeader(req);
    };
  }
}
