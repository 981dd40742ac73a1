// Who is calling, as every daemon sees it, and the bearer token a request carries.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { FanoutError } from '../protocol/errors.ts';

export type Role = 'admin' | 'operator' | 'viewer';
export const ROLES: readonly Role[] = ['admin', 'operator', 'viewer'];

/** Who did something, in words: a person's name, the admin token, a device. */
export const whoIs = (p: Principal) =>
  p.kind === 'user' || p.kind === 'admin' ? p.name : p.kind === 'anonymous' ? 'anonymous' : p.id;

export type Principal =
  | { kind: 'anonymous' }
  | { kind: 'admin'; name: string }
  /** A person (`fanout user add`): viewers read, operators also decide, admins do everything. */
  | { kind: 'user'; name: string; role: Role }
  | { kind: 'relay'; id: string }
  | { kind: 'endpoint'; id: string };

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal;
    /** What a change made or changed, for the audit log, where the URL does not say (a new job's id). */
    auditTarget: string | null;
  }
}

/** The bearer token, from the Authorization header only: a token in a URL ends up in logs and history. */
export function bearer(req: FastifyRequest): string {
  const h = req.headers.authorization;
  if (h?.startsWith('Bearer ')) return h.slice(7).trim();
  throw new FanoutError('FANOUT_ERR_AUTH_MISSING', {});
}

const digest = (s: string) => createHash('sha256').update(s).digest();

/** Compares secrets in constant time (hashing first makes the lengths equal). */
export const sameSecret = (a: string, b: string) => timingSafeEqual(digest(a), digest(b));

/** An authenticator for daemons whose admin is one token (relay: DATA/admin.token; agent: its device token). */
export const singleToken =
  (token: string, name: string, needs: string) =>
  async (req: FastifyRequest): Promise<Principal> => {
    if (!sameSecret(bearer(req), token)) throw new FanoutError('FANOUT_ERR_AUTH_FORBIDDEN', { needs });
    return { kind: 'admin', name };
  };
