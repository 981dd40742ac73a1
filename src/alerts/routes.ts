// HTTP face of the alert center: intake, the ten steps' record, tickets, outages, thresholds.
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { Auth } from '../master/auth.ts';
import type { Config } from '../master/config.ts';
import type { Plans } from '../master/plans.ts';
import { FanoutError } from '../protocol/errors.ts';
import type { Db } from '../store/index.ts';
import type { AlertCenter } from './center.ts';
import { type IncomingAlert, parseAlertmanager, parseJsonAlert, parseTextLine } from './parse.ts';
import type { Outages, Tickets } from './tickets.ts';

export interface AlertDeps {
  db: Db;
  auth: Auth;
  center: AlertCenter;
  tickets: Tickets;
  outages: Outages;
  plans: Plans;
  cfg: Config;
}

const MAX_ALERTS_PER_REQUEST = 10_000;

export function alertRoutes(app: FastifyInstance, d: AlertDeps) {
  const sourceOf = async (req: Parameters<Auth['identify']>[0]) => {
    const p = await d.auth.identify(req);
    return p.kind === 'admin' ? 'api' : p.id;
  };
  const accept = async (alerts: IncomingAlert[]) => {
    if (alerts.length > MAX_ALERTS_PER_REQUEST)
      throw new FanoutError(
        'FANOUT_ERR_ALERT_INVALID',
        `${alerts.length} alerts in one request; send at most ${MAX_ALERTS_PER_REQUEST}`,
      );
    const stored = await d.center.ingest(alerts);
    return {
      accepted: stored.filter((s) => !s.duplicate).length,
      duplicates: stored.filter((s) => s.duplicate).length,
      ids: stored.map((s) => s.id),
      outcomes: stored.map((s) => s.outcome),
    };
  };

  app.post('/api/v1/alerts', async (req) => {
    const source = await sourceOf(req);
    if (typeof req.body === 'string') {
      const lines = req.body.split(/\r?\n/).filter((l) => l.trim() && !l.trimStart().startsWith('#'));
      return accept(lines.map((l) => parseTextLine(l, source)));
    }
    const items = Array.isArray(req.body) ? req.body : [req.body];
    return accept(items.map((o) => parseJsonAlert(o, source)));
  });
  app.post('/api/v1/alerts/alertmanager', async (req) => {
    await d.auth.identify(req);
    return accept(parseAlertmanager(req.body));
  });
  app.get('/api/v1/alerts', async (req) => {
    await d.auth.admin(req);
    const q = z.object({ limit: z.coerce.number().int().min(1).max(5000).default(200) }).parse(req.query);
    return d.center.list(q.limit);
  });
  app.get('/api/v1/alerts/:id', async (req) => {
    await d.auth.admin(req);
    const id = Number((req.params as { id: string }).id);
    if (!Number.isInteger(id)) throw new FanoutError('FANOUT_ERR_INPUT_INVALID', 'alert ids are numbers');
    return d.center.get(id);
  });

  app.get('/api/v1/failed', async (req) => (await d.auth.admin(req), d.tickets.failedList()));
  app.get('/api/v1/tickets', async (req) => (await d.auth.admin(req), d.tickets.list()));
  app.get('/api/v1/outbox', async (req) => {
    await d.auth.admin(req);
    const rows = await d.db.selectFrom('outbox').selectAll().orderBy('id', 'desc').limit(200).execute();
    return rows.map((o) => ({
      id: Number(o.id),
      ticketId: o.ticket_id,
      recipients: JSON.parse(o.recipients),
      subject: o.subject,
      attempts: o.attempts,
      state: o.state,
      nextAt: o.next_at,
      lastError: o.last_error,
    }));
  });
  const resolve = async (id: string, by: string) => {
    const ticket = await d.tickets.setState(id, 'resolved');
    const plans = await d.plans.afterTicketResolved(id, by);
    return { ticket, plans };
  };
  app.post('/api/v1/tickets/:id/resolve', async (req) => {
    await d.auth.admin(req);
    return resolve((req.params as { id: string }).id, 'admin');
  });
  app.post('/api/v1/tickets/:id/acknowledge', async (req) => {
    await d.auth.admin(req);
    return d.tickets.setState((req.params as { id: string }).id, 'acknowledged');
  });
  // The link in the e-mail: the key in it stands for the admin token, for this one ticket only.
  app.get('/api/v1/tickets/:id/resolve', async (req, reply) => {
    const { id } = req.params as { id: string };
    const { key } = req.query as { key?: string };
    const t = await d.tickets.get(id);
    if (!key || key !== t.resolve_key)
      throw new FanoutError('FANOUT_ERR_AUTH_INVALID', 'this resolve link is not valid for that ticket');
    const r = await resolve(id, 'mail link');
    return reply
      .type('text/html')
      .send(
        `<!doctype html><title>Ticket ${id}</title><p>Ticket ${id} is resolved.${r.plans.length ? ` ${r.plans.length} redistribution plan(s) wait for approval in the dashboard.` : ''}</p>`,
      );
  });

  app.get('/api/v1/outages', async (req) => (await d.auth.admin(req), d.outages.list()));
  app.post('/api/v1/outages', async (req) => (await d.auth.admin(req), d.outages.add(req.body)));
  app.delete('/api/v1/outages/:id', async (req) => {
    await d.auth.admin(req);
    await d.outages.remove((req.params as { id: string }).id);
    return { ok: true };
  });

  app.get('/api/v1/thresholds', async (req) => {
    await d.auth.admin(req);
    const runtime = await d.db.selectFrom('device_overrides').selectAll().execute();
    return {
      window: d.cfg.alerts.window,
      defaultThreshold: d.cfg.alerts.defaultThreshold,
      failureTypes: d.cfg.alerts.failureTypes,
      deviceOverrides: [
        ...Object.entries(d.cfg.alerts.deviceOverrides).flatMap(([deviceId, m]) =>
          Object.entries(m).map(([failureType, threshold]) => ({ deviceId, failureType, threshold, source: 'config' })),
        ),
        ...runtime.map((r) => ({
          deviceId: r.device_id,
          failureType: r.failure_type,
          threshold: r.threshold,
          source: 'runtime',
        })),
      ],
    };
  });
  app.post('/api/v1/overrides', async (req) => {
    await d.auth.admin(req);
    const o = z
      .object({
        deviceId: z.string(),
        failureType: z.string().regex(/^[A-Z][A-Z0-9_]*$/),
        threshold: z.number().int().positive(),
      })
      .parse(req.body);
    if (!(await d.db.selectFrom('devices').select('id').where('id', '=', o.deviceId).executeTakeFirst()))
      throw new FanoutError('FANOUT_ERR_DEVICE_UNKNOWN', `device "${o.deviceId}" is not in the inventory`);
    await d.db
      .insertInto('device_overrides')
      .values({ device_id: o.deviceId, failure_type: o.failureType, threshold: o.threshold })
      .onConflict((oc) => oc.columns(['device_id', 'failure_type']).doUpdateSet({ threshold: o.threshold }))
      .execute();
    return o;
  });

  app.get('/api/v1/plans', async (req) => (await d.auth.admin(req), d.plans.list()));
  app.post('/api/v1/relays/:id/plans', async (req) => {
    await d.auth.admin(req);
    const body = z.object({ jobId: z.string().optional() }).parse(req.body ?? {});
    return { plans: await d.plans.request((req.params as { id: string }).id, body.jobId) };
  });
  app.post('/api/v1/plans/:id/approve', async (req) => {
    await d.auth.admin(req);
    const by = z.object({ by: z.string().default('dashboard') }).parse(req.body ?? {}).by;
    return { plan: await d.plans.decide((req.params as { id: string }).id, 'approve', by) };
  });
  app.post('/api/v1/plans/:id/reject', async (req) => {
    await d.auth.admin(req);
    const by = z.object({ by: z.string().default('dashboard') }).parse(req.body ?? {}).by;
    return { plan: await d.plans.decide((req.params as { id: string }).id, 'reject', by) };
  });
}
