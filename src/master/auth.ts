// Who is calling the master: the admin (admin.token), a relay or an endpoint (device tokens, stored hashed).
import type { FastifyRequest } from 'fastify';
import { bearer, type Principal, sameSecret } from '../common/auth.ts';
import type { Authenticate } from '../common/server.ts';
import { sha256Hex } from '../protocol/crypto.ts';
import { FanoutError } from '../protocol/errors.ts';
import type { Db } from '../store/index.ts';
import { type People, refusal } from './people.ts';

export class Auth {
  constructor(
    private readonly db: Db,
    private readonly adminToken: string,
    private readonly people: People,
  ) {}

  async identify(token: string): Promise<Principal> {
    if (sameSecret(token, this.adminToken)) return { kind: 'admin', name: 'admin' };
    const person = await this.people.byToken(token);
    if (person) return person;
    const dev = await this.db
      .selectFrom('devices')
      .select(['id', 'kind'])
      .where('token_hash', '=', sha256Hex(token))
      .executeTakeFirst();
    if (!dev)
      throw new FanoutError('FANOUT_ERR_AUTH_INVALID', {
        server: 'the master',
        hint: 'use the admin token, a token from `fanout user add`, or the device token from `fanout device token ID`',
      });
    return dev.kind === 'relay' ? { kind: 'relay', id: dev.id } : { kind: 'endpoint', id: dev.id };
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
