// The HTTP face of people and the audit log (DESIGN §14, §16).
import { z } from 'zod';
import { ROLES, type Role, whoIs } from '../common/auth.ts';
import type { App } from '../common/server.ts';
import { PageQuery } from '../protocol/page.ts';
import type { People } from './people.ts';

export function peopleRoutes(s: App, people: People) {
  s.get('/api/v1/me', async (req) => ({
    name: whoIs(req.principal),
    role: req.principal.kind === 'user' ? req.principal.role : 'admin',
  }));
  s.get('/api/v1/users', async () => people.list());
  s.post(
    '/api/v1/users',
    {
      schema: {
        body: z.object({
          name: z
            .string()
            .regex(/^[\w.@-]{1,100}$/, 'names are letters, digits, dot, dash, underscore, @ (at most 100)'),
          role: z.enum(ROLES as [Role, ...Role[]]),
        }),
      },
    },
    async (req) => {
      req.auditTarget = `${req.body.name} (${req.body.role})`;
      return people.add(req.body.name, req.body.role);
    },
  );
  s.delete('/api/v1/users/:id', { schema: { params: z.object({ id: z.string().min(1).max(100) }) } }, async (req) =>
    people.remove(req.params.id),
  );
  s.get(
    '/api/v1/audit',
    {
      schema: {
        querystring: PageQuery.extend({
          who: z.string().max(200).optional(),
          target: z.string().max(400).optional(),
          action: z.string().max(200).optional(),
          // A day (2026-11-01, from its start in UTC) or a time.
          since: z.union([z.iso.datetime({ offset: true }), z.iso.date()]).optional(),
        }),
      },
    },
    async (req) => people.auditLog(req.query, req.query),
  );
}
