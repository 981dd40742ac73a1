// Who is calling the master: the admin (admin.token), a relay or an endpoint (device tokens, stored hashed).
import type { FastifyRequest } from 'fastify';
import { bearer, type Principal, sameSecret } from '../common/auth.ts';
import type { Authenticate } from '../common/server.ts';
import { sha256Hex } from '../protocol/crypto.ts';
import { FanoutError } from '../protocol/errors.ts';
import type { Db } from '../store/index.ts';

export class Auth {
  constructor(
    private readonly db: Db,
    private readonly adminToken: string,
  ) {}

  async identify(token: string): Promise<Principal> {
    if (sameSecret(token, this.adminToken)) return { kind: 'admin', name: 'admin' };
    const dev = await this.db
      .selectFrom('devices')
      .select(['id', 'kind'])
      .where('token_hash', '=', sha256Hex(token))
      .executeTakeFirst();
    if (!dev)
      throw new FanoutError('FANOUT_ERR_AUTH_INVALID', {
        server: 'the master',
        hint: 'use the admin token or the device token from `fanout device token ID`',
      });
    return dev.kind === 'relay' ? { kind: 'relay', id: dev.id } : { kind: 'endpoint', id: dev.id };
  }

  private only(kinds: Principal['kind'][], needs: string, allowQuery = false): Authenticate {
    return async (req: FastifyRequest) => {
      const p = await this.identify(bearer(req, allowQuery));
      if (!kinds.includes(p.kind)) throw new FanoutError('FANOUT_ERR_AUTH_FORBIDDEN', { needs });
      return p;
    };
  }

  readonly admin = this.only(['admin'], 'the admin token');
  /** The dashboard's event stream: an EventSource cannot send headers. */
  readonly adminEvents = this.only(['admin'], 'the admin token', true);
  readonly relay = this.only(['relay'], 'a relay token');
  readonly relayOrAdmin = this.only(['relay', 'admin'], 'a relay token: endpoints fetch content from their relay');
  readonly anyone = this.only(['admin', 'relay', 'endpoint'], 'a token');
}
