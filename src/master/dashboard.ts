// The dashboard's side of the master: the built web app, its event tickets and its live event stream.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import fastifyStatic from '@fastify/static';
import { packageRoot } from '../common/package-root.ts';
import { type App, scope } from '../common/server.ts';
import type { Auth } from './auth.ts';
import { EventTickets } from './event-tickets.ts';
import type { Jobs } from './jobs.ts';
import type { MasterKeys } from './keys.ts';
import { eventRoutes } from './routes.ts';

export async function dashboardRoutes(app: App, auth: Auth, jobs: Jobs, keys: MasterKeys) {
  // Derived from the signing key: masters sharing it accept each other's tickets.
  const tickets = new EventTickets(createHash('sha256').update(`fanout event tickets\n${keys.privatePem}`).digest());
  scope(app, 'admin', auth.admin, (s) => s.get('/api/v1/events/ticket', async (req) => tickets.issue(req.principal)));
  scope(app, 'events', tickets.authenticate(auth.adminEvents), (s) => eventRoutes(s, jobs));
  const webRoot = join(packageRoot(), 'dist', 'web');
  if (existsSync(webRoot)) await app.register(fastifyStatic, { root: webRoot, prefix: '/' });
  else app.get('/', async () => ({ message: 'dashboard not built: run `npm run build:web`' }));
}
