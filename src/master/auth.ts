// Who is calling: the admin (admin.token), a relay or an endpoint (device tokens, stored hashed).
import type { FastifyRequest } from 'fastify';
import { bearer } from '../common/server.ts';
import { sha256Hex } from '../protocol/crypto.ts';
import { FanoutError } from '../protocol/errors.ts';
import type { Db } from '../store/index.ts';

export type Principal = { kind: 'admin' } | { kind: 'relay'; id: string } | { kind: 'endpoint'; id: string };

export class Auth {
  constructor(
    private readonly db: Db,
    private readonly adminToken: string,
  ) {}

  async identify(req: FastifyRequest): Promise<Principal> {
    const token = bearer(req);
    if (token === this.adminToken) return { kind: 'admin' };
    const dev = await this.db
      .selectFrom('devices')
      .select(['id', 'kind'])
      .where('token_hash', '=', sha256Hex(token))
      .executeTakeFirst();
    if (!dev)
      throw new FanoutError(
        'FANOUT_ERR_AUTH_INVALID',
        'token not recognized: use the admin token or the device token from `fanout device token ID`',
      );
    return dev.kind === 'relay' ? { kind: 'relay', id: dev.id } : { kind: 'endpoint', id: dev.id };
  }

  async admin(req: FastifyRequest) {
    const p = await this.identify(req);
    if (p.kind !== 'admin') throw new FanoutError('FANOUT_ERR_AUTH_FORBIDDEN', 'this needs the admin token');
  }

  async relay(req: FastifyRequest): Promise<string> {
    const p = await this.identify(req);
    if (p.kind !== 'relay') throw new FanoutError('FANOUT_ERR_AUTH_FORBIDDEN', 'this needs a relay token');
    return p.id;
  }

  /** Relays (and the admin) may post alerts; endpoints may too, for their own device. */
  async any(req: FastifyRequest): Promise<Principal> {
    return this.identify(req);
  }
}
