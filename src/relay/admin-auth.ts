// Who may use a relay's admin API: the tool on its host (the admin token), or the master, by a
// request signed with the key this relay pinned (DESIGN §12); a signed request's body must match.
import type { FastifyRequest } from 'fastify';
import { type Principal, singleToken } from '../common/auth.ts';
import { checkedWithReread } from '../common/pinned-key.ts';
import type { App } from '../common/server.ts';
import { FanoutError } from '../protocol/errors.ts';
import { MASTER_SCHEME, masterBodyMatches, masterRequestProblem } from '../protocol/master-request.ts';

export function relayAdminAuth(
  adminToken: string,
  relayId: string,
  keys: () => readonly string[],
  /** Asks the master for its key again (at most once a second): it may have been rotated since. */
  reread: () => Promise<void>,
) {
  const byToken = singleToken(adminToken, 'relay admin', `relay ${relayId}'s admin token (DATA/admin.token)`);
  return async (req: FastifyRequest): Promise<Principal> => {
    if (!String(req.headers.authorization ?? '').startsWith(`${MASTER_SCHEME} `)) return byToken(req);
    const why = await checkedWithReread(
      keys,
      (k) => masterRequestProblem(k, relayId, req),
      (problem) => !!problem,
      () => reread().catch(() => undefined),
    );
    if (why) throw new FanoutError('FANOUT_ERR_AUTH_FORBIDDEN', { needs: `a request signed by the master (${why})` });
    return { kind: 'admin', name: 'master' };
  };
}

/** In the admin scope: a signed request's body is checked against its signed hash once parsed. */
export function checkSignedBodies(s: App) {
  s.addHook('preValidation', async (req) => {
    if (req.principal.kind === 'admin' && req.principal.name === 'master' && !masterBodyMatches(req.headers, req.body))
      throw new FanoutError('FANOUT_ERR_AUTH_FORBIDDEN', { needs: 'a body matching what the master signed' });
  });
}
