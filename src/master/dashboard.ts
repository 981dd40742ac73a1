// The dashboard's side of the master: the built web app, its event tickets and its live event stream.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import fastifyStatic from '@fastify/static';
import { packageRoot } from '../common/package-root.ts';
import { type App, scope } from '../common/server.ts';
import type { Auth } from './auth.ts';
import { EventTickets } from './event-tickets.ts';
import type { Change } from './job-view.ts';
import type { Jobs } from './jobs.ts';

/** `eventSecret`: shared by the masters on one database (shared-secrets.ts), so each takes the others' tickets. */
export async function dashboardRoutes(app: App, auth: Auth, jobs: Jobs, eventSecret: Buffer) {
  const tickets = new EventTickets(eventSecret);
  scope(app, 'admin', auth.admin, (s) => s.get('/api/v1/events/ticket', async (req) => tickets.issue(req.principal)));
  scope(app, 'events', tickets.authenticate(auth.adminEvents), (s) => eventRoutes(s, jobs));
  const webRoot = join(packageRoot(), 'dist', 'web');
  if (existsSync(webRoot)) await app.register(fastifyStatic, { root: webRoot, prefix: '/' });
  else app.get('/', async () => ({ message: 'dashboard not built: run `npm run build:web`' }));
}

/**
 * Live updates for the dashboard: what changed (jobs by id, lists by name), coalesced over 100 ms, so a
 * page asks again for that only. `{"all":true}` when a change did not say (or came from another master).
 */
export function eventRoutes(s: App, jobs: Jobs) {
  s.get('/api/v1/events', async (req, reply) => {
    reply.raw.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
    });
    reply.raw.write('retry: 2000\n\n');
    let pending: NodeJS.Timeout | undefined;
    let all = false;
    const ids = new Set<string>();
    const lists = new Set<string>();
    const send = (c?: Change) => {
      if (!c || (!c.jobs && !c.lists)) all = true;
      for (const j of c?.jobs ?? []) ids.add(j);
      for (const l of c?.lists ?? []) lists.add(l);
      pending ??= setTimeout(() => {
        pending = undefined;
        const event = all ? { all: true } : { all: false, jobs: [...ids], lists: [...lists] };
        all = false;
        ids.clear();
        lists.clear();
        reply.raw.write(`data: ${JSON.stringify(event)}\n\n`);
      }, 100);
    };
    const elsewhere = () => send();
    const ping = setInterval(() => reply.raw.write(': ping\n\n'), 15_000);
    jobs.events.on('changed', send);
    jobs.events.on('changed elsewhere', elsewhere);
    req.raw.on('close', () => {
      clearInterval(ping);
      clearTimeout(pending);
      jobs.events.off('changed', send);
      jobs.events.off('changed elsewhere', elsewhere);
    });
    return reply;
  });
}
