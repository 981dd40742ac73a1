// Who is calling the master: the admin (admin.token), a relay or an endpoint (device tokens, stored hashed).
import { timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { sql } from 'kysely';
import { bearer, type Principal, type Role } from '../common/auth.ts';
import type { Authenticate } from '../common/server.ts';
import { sha256Hex } from '../protocol/crypto.ts';
import { FanoutError } from '../protocol/errors.ts';
import type { Db } from '../store/index.ts';
import { refusal } from './people.ts';

export class Auth {
  private readonly adminHash: Buffer;

  constructor(
    private readonly db: Db,
    adminToken: string,
  ) {
    this.adminHash = Buffer.from(sha256Hex(adminToken), 'hex');
  }

  /**
   * The token hashed once, compared with the admin token's hash in constant time, then looked up
   * among people and devices in one read (one round trip on PostgreSQL, not two).
   */
  async identify(token: string): Promise<Principal> {
    const hash = sha256Hex(token);
    if (timingSafeEqual(Buffer.from(hash, 'hex'), this.adminHash)) return { kind: 'admin', name: 'admin' };
    const found = await sql<{ source: 'user' | 'device'; id: string; role: string | null; kind: string | null }>`
      select 'user' as source, name as id, role, null as kind from users where token_hash = ${hash}
      union all
      select 'device' as source, id, null as role, kind from devices where token_hash = ${hash}`.execute(this.db);
    // A person's token first, as before: tokens are random, so two rows would be a broken database.
    const who = found.rows.find((r) => r.source === 'user') ?? found.rows[0];
    if (!who)
      throw new FanoutError('FANOUT_ERR_AUTH_INVALID', {
        server: 'the master',
        hint: 'use the admin token, a token from `fanout user add`, or the device token from `fanout device token ID`',
      });
    if (who.source === 'user') return { kind: 'user', name: who.id, role: who.role as Role };
    return who.kind === 'relay' ? { kind: 'relay', id: who.id } : { kind: 'endpoint', id: who.id };
  }

  private only(kinds: Principal['kind'][], needs: string): Authenticate {
    return async (req: FastifyRequest) => {
      const p = await this.identify(bearer(req));
      if (!kinds.includes(p.kind)) throw new FanoutError('FANOUT_ERR_AUTH_FORBIDDEN', { needs });
      return p;
    };
  }

  /** The admin token, or a person whose role allows this route (people.ts). */
  readonly admin: Authenticate = async (req) => {
    const p = await this.only(['admin', 'user'], 'the admin token or a user token')(req);
    if (p.kind !== 'user') return p;
    const why = refusal(p.role, req.method, req.routeOptions.url ?? '');
    if (why) throw new FanoutError('FANOUT_ERR_AUTH_FORBIDDEN', { needs: `${why}; ${p.name} is a ${p.role}` });
    return p;
  };
  /** The dashboard's event stream: an EventSource cannot send headers. */
  readonly adminEvents = this.only(['admin', 'user'], 'the admin token or a user token');
  readonly relay = this.only(['relay'], 'a relay token');
  readonly relayOrAdmin = this.only(['relay', 'admin'], 'a relay token: endpoints fetch content from their relay');
  readonly anyone = this.only(['admin', 'relay', 'endpoint'], 'a token');
}
