// HTTP face of the alert center: intake, the ten steps' record, tickets, outages, thresholds.
// The master registers these inside its scopes; `onTicketResolved` is how a resolve reaches plans.
import { z } from 'zod';
import { type Principal, whoIs } from '../common/auth.ts';
import type { App } from '../common/server.ts';
import { FanoutError } from '../protocol/errors.ts';
import { MAX_ALERTS_PER_REQUEST } from '../protocol/limits.ts';
import { PageQuery } from '../protocol/page.ts';
import type { Db } from '../store/index.ts';
import { ALERT_OUTCOMES, type AlertCenter } from './center.ts';
import type { AlertsConfig } from './config.ts';
import type { IncomingAlert } from './incoming.ts';
import type { TicketLinks } from './links.ts';
import { requeueMail } from './mailer.ts';
import type { Outages } from './outages.ts';
import { parseAlertmanager, parseJsonAlert, parseTextLine } from './parse.ts';
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

/** Intake: any admin or device token; the source is who sent it. */
export function alertIntakeRoutes(s: App, d: AlertDeps) {
  const sourceOf = (p: Principal) =>
    p.kind === 'admin' ? 'api' : p.kind === 'user' ? `user ${p.name}` : p.kind === 'anonymous' ? 'anonymous' : p.id;
  /**
   * A device speaks only for itself (a relay also for the devices it serves); its alerts were parsed
   * with the token's device as their source, never the body's. Anything else refuses the whole request.
   */
  const bind = async (p: Principal, alerts: IncomingAlert[]) => {
    if (p.kind === 'admin') return alerts;
    if (p.kind !== 'relay' && p.kind !== 'endpoint')
      throw new FanoutError('FANOUT_ERR_AUTH_FORBIDDEN', { needs: 'a token' });
    const mine = await d.db
      .selectFrom('devices')
      .select(['id', 'hostname'])
      .where((eb) =>
        p.kind === 'relay'
          ? eb.or([eb('id', '=', p.id), eb('relay', '=', p.id), eb('upstream', '=', p.id)])
          : eb('id', '=', p.id),
      )
      .execute();
    const names = new Set(mine.flatMap((x) => (x.hostname ? [x.id, x.hostname] : [x.id])));
    const foreign = [...new Set(alerts.flatMap((a) => (a.deviceId && !names.has(a.deviceId) ? [a.deviceId] : [])))];
    if (foreign.length)
      throw new FanoutError('FANOUT_ERR_AUTH_FORBIDDEN', {
        needs: `a token of ${foreign.join(', ')}: ${p.id} may send alerts about ${p.kind === 'relay' ? 'itself and its endpoints' : 'itself'} only`,
      });
    // Parsed for this request alone: set in place (a spread copy costs microseconds an alert).
    for (const a of alerts) a.relayId = p.kind === 'relay' ? p.id : undefined;
    return alerts;
  };
  const accept = async (alerts: IncomingAlert[], from: object) => {
    if (alerts.length > MAX_ALERTS_PER_REQUEST)
      throw new FanoutError('FANOUT_ERR_ALERT_INVALID', {
        detail: `${alerts.length} alerts in one request; send at most ${MAX_ALERTS_PER_REQUEST}`,
      });
    const stored = await d.center.ingest(alerts, from);
    return {
      accepted: stored.filter((x) => !x.duplicate).length,
      duplicates: stored.filter((x) => x.duplicate).length,
      ids: stored.map((x) => x.id),
      outcomes: stored.map((x) => x.outcome),
    };
  };
  s.post('/api/v1/alerts', { bodyLimit: 8 * 1024 * 1024 }, async (req) => {
    const source = sourceOf(req.principal);
    if (typeof req.body === 'string') {
      const lines = req.body.split(/\r?\n/).filter((l) => l.trim() && !l.trimStart().startsWith('#'));
      return accept(
        await bind(
          req.principal,
          lines.map((l) => parseTextLine(l, source)),
        ),
        req.raw.socket,
      );
    }
    const items = Array.isArray(req.body) ? req.body : [req.body];
    return accept(
      await bind(
        req.principal,
        items.map((o) => parseJsonAlert(o, source)),
      ),
      req.raw.socket,
    );
  });
}

/** Alertmanager's webhook: an integration holding the admin token. */
export function alertmanagerRoutes(s: App, d: AlertDeps) {
  s.post('/api/v1/alerts/alertmanager', { bodyLimit: 8 * 1024 * 1024 }, async (req) => {
    const stored = await d.center.ingest(parseAlertmanager(req.body));
    return {
      accepted: stored.filter((x) => !x.duplicate).length,
      ids: stored.map((x) => x.id),
      outcomes: stored.map((x) => x.outcome),
    };
  });
}

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
