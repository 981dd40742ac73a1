// People and roles (DESIGN §14): viewers read; operators also approve or reject plans, resolve and
// acknowledge tickets and manage outages; admins (and the admin token) do everything. Every change
// is written to the audit log: who, what, when, from where.
import type { FastifyReply, FastifyRequest } from 'fastify';
import { sql } from 'kysely';
import { type Role, whoIs } from '../common/auth.ts';
import { newToken, sha256Hex } from '../protocol/crypto.ts';
import { FanoutError } from '../protocol/errors.ts';
import type { Page } from '../protocol/page.ts';
import type { Db } from '../store/index.ts';

/** What an operator may change, beyond reading. */
const OPERATOR = new Set([
  'POST /api/v1/plans/:id/approve',
  'POST /api/v1/plans/:id/reject',
  'POST /api/v1/relays/:id/plans',
  'POST /api/v1/tickets/:id/resolve',
  'POST /api/v1/tickets/:id/acknowledge',
  'POST /api/v1/tickets/:id/resend',
  'POST /api/v1/outages',
  'DELETE /api/v1/outages/:id',
  'POST /api/v1/devices/verify',
]);

/** Why a person may not call this route (undefined: they may). */
export function refusal(role: Role, method: string, route: string): string | undefined {
  if (role === 'admin' || method === 'GET' || method === 'HEAD') return undefined;
  if (role === 'operator' && OPERATOR.has(`${method} ${route}`)) return undefined;
  return role === 'viewer' ? 'an operator or admin (viewers only read)' : 'an admin';
}

export class People {
  constructor(private readonly db: Db) {}

  /** Adds a person, or gives an existing one a new token (the old stops working) and the role given. */
  async add(name: string, role: Role) {
    const token = newToken();
    const row = { name, role, token_hash: sha256Hex(token), created_at: new Date().toISOString() };
    await this.db
      .insertInto('users')
      .values(row)
      .onConflict((oc) => oc.column('name').doUpdateSet({ role, token_hash: row.token_hash }))
      .execute();
    return { name, role, token };
  }

  async list() {
    const rows = await this.db.selectFrom('users').select(['name', 'role', 'created_at']).orderBy('name').execute();
    return rows.map((r) => ({ name: r.name, role: r.role, createdAt: r.created_at }));
  }

  async remove(name: string) {
    const r = await this.db.deleteFrom('users').where('name', '=', name).executeTakeFirst();
    if (!Number(r.numDeletedRows)) throw new FanoutError('FANOUT_ERR_INPUT_INVALID', { detail: `no user "${name}"` });
    return { name };
  }

  /** onResponse in the admin scope: a change that was accepted is written down. */
  audit = async (req: FastifyRequest, reply: FastifyReply) => {
    if (req.method === 'GET' || req.method === 'HEAD' || reply.statusCode >= 400 || !req.principal) return;
    const params = (req.params ?? {}) as Record<string, string>;
    await this.db
      .insertInto('audit')
      .values({
        at: new Date().toISOString(),
        who: whoIs(req.principal),
        action: `${req.method} ${req.routeOptions.url ?? req.url}`,
        target: req.auditTarget ?? params.id ?? (Object.keys(params).length ? JSON.stringify(params) : null),
        source: req.ip,
      })
      .execute()
      .catch((err) => req.log.error({ err }, 'audit log write failed'));
  };

  /** Newest first; `who` and `target` exactly, `action` anywhere in it ("overrides"), from `since` on. */
  async auditLog(page: Page, only: { who?: string; target?: string; action?: string; since?: string } = {}) {
    let q = this.db.selectFrom('audit').selectAll();
    if (only.who) q = q.where('who', '=', only.who);
    if (only.target) q = q.where('target', '=', only.target);
    if (only.action) {
      const pattern = `%${only.action.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
      q = q.where(sql<boolean>`lower(action) like ${pattern} escape '\\'`);
    }
    if (only.since) q = q.where('at', '>=', new Date(only.since).toISOString());
    const rows = await q.orderBy('id', 'desc').limit(page.limit).offset(page.offset).execute();
    return rows.map((r) => ({ at: r.at, who: r.who, action: r.action, target: r.target, from: r.source }));
  }
}
