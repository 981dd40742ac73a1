// HTTP face of the alert center: the ten steps' record, tickets, outages, thresholds (intake: intake-routes.ts).
// The master registers these inside its scopes; `onTicketResolved` is how a resolve reaches plans.
import { z } from 'zod';
import { whoIs } from '../common/auth.ts';
import type { App } from '../common/server.ts';
import { PageQuery } from '../protocol/page.ts';
import type { Db } from '../store/index.ts';
import { ALERT_OUTCOMES, type AlertCenter } from './center.ts';
import type { AlertsConfig } from './config.ts';
import type { TicketLinks } from './links.ts';
import { requeueMail } from './mailer.ts';
import type { Outages } from './outages.ts';
import { thresholdRoutes } from './threshold-routes.ts';
import { FAILED_STATES, TICKET_STATES, type Tickets } from './tickets.ts';

/** A job a relay was asked about on a resolve: why no plan came (`none`), or why it could not answer (`waiting`). */
export type AskedJob = { relayId: string; jobId: string; why: string };

export interface AlertDeps {
  db: Db;
  center: AlertCenter;
  tickets: Tickets;
  outages: Outages;
  cfg: AlertsConfig;
  /** Resolving a ticket may ask relays for redistribution plans (master/plans.ts). */
  onTicketResolved: (
    ticketId: string,
    by: string,
  ) => Promise<{ plans: unknown[]; waiting: AskedJob[]; none: AskedJob[] }>;
  links: TicketLinks;
  /** Wakes the mailer. */
  onMailQueued: () => void;
}

const Id = z.object({ id: z.string().min(1).max(200) });

export function alertAdminRoutes(s: App, d: AlertDeps) {
  const text = z.string().min(1).max(200).optional();
  s.get(
    '/api/v1/alerts',
    {
      schema: {
        querystring: PageQuery.extend({ device: text, type: text, outcome: z.enum(ALERT_OUTCOMES).optional() }),
      },
    },
    async (req) => d.center.list(req.query, req.query),
  );
  s.get(
    '/api/v1/alerts/:id',
    { schema: { params: z.object({ id: z.coerce.number().int().positive() }) } },
    async (req) => d.center.get(req.params.id),
  );

  s.get(
    '/api/v1/failed',
    { schema: { querystring: PageQuery.extend({ state: z.enum(FAILED_STATES).optional(), relay: text, job: text }) } },
    async (req) => d.tickets.failedList(req.query, req.query),
  );
  s.get(
    '/api/v1/tickets',
    { schema: { querystring: PageQuery.extend({ state: z.enum(TICKET_STATES).optional(), device: text }) } },
    async (req) => d.tickets.list(req.query, req.query),
  );
  s.get('/api/v1/outbox', { schema: { querystring: PageQuery } }, async (req) => {
    const rows = await d.db
      .selectFrom('outbox')
      .selectAll()
      .orderBy('id', 'desc')
      .limit(req.query.limit)
      .offset(req.query.offset)
      .execute();
    return rows.map((o) => ({
      id: Number(o.id),
      ticketId: o.ticket_id,
      recipients: JSON.parse(o.recipients),
      subject: o.subject,
      body: o.body,
      attempts: o.attempts,
      state: o.state,
      nextAt: o.next_at,
      lastError: o.last_error,
    }));
  });
  s.post('/api/v1/tickets/:id/resolve', { schema: { params: Id } }, async (req) =>
    resolve(d, req.params.id, whoIs(req.principal)),
  );
  s.post('/api/v1/tickets/:id/resend', { schema: { params: Id } }, async (req) => {
    await d.tickets.get(req.params.id);
    await requeueMail(d.db, req.params.id);
    d.onMailQueued();
    const t = await d.tickets.get(req.params.id);
    return { id: t.id, state: t.state };
  });
  s.post('/api/v1/tickets/:id/acknowledge', { schema: { params: Id } }, async (req) =>
    d.tickets.setState(req.params.id, 'acknowledged', whoIs(req.principal)),
  );

  s.get('/api/v1/outages', { schema: { querystring: PageQuery } }, async (req) => d.outages.list(req.query));
  s.post('/api/v1/outages', async (req) => {
    const o = await d.outages.add(req.body);
    req.auditTarget = o.id;
    return o;
  });
  s.delete('/api/v1/outages/:id', { schema: { params: Id } }, async (req) => {
    await d.outages.remove(req.params.id);
    return { ok: true };
  });

  thresholdRoutes(s, d);
}

export async function resolve(d: AlertDeps, id: string, by: string) {
  const ticket = await d.tickets.setState(id, 'resolved', by);
  const { plans, waiting, none } = await d.onTicketResolved(id, by);
  return { ticket, plans, waiting, none };
}
