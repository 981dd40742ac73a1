// The master's /metrics beyond HTTP and bytes (DESIGN §10, §14): what an operator graphs and alerts
// on. Each gauge is read from the database when scraped, so every master of a shared database reports
// the same fleet.
import { Gauge, type Registry } from 'prom-client';
import type { Store } from '../store/index.ts';

type Table = 'alerts' | 'tickets' | 'plans' | 'targets' | 'relay_jobs' | 'outbox' | 'webhook_outbox';

export function masterMetrics(registry: Registry, store: Pick<Store, 'db' | 'scan'>) {
  const { db } = store;
  // Counts over whole tables (a million alerts, every target): scanned off the event loop.
  const byColumn = (name: string, help: string, table: Table, column: string, label: string) =>
    new Gauge({
      name,
      help,
      labelNames: [label],
      registers: [registry],
      async collect() {
        const rows = await store.scan<{ k: string; n: number }>(
          `select "${column}" as k, count(*) as n from "${table}" group by "${column}"`,
        );
        this.reset();
        for (const r of rows) this.set({ [label]: String(r.k) }, Number(r.n));
      },
    });
  byColumn('fanout_alerts', 'Alerts received, by the outcome of the alert center', 'alerts', 'outcome', 'outcome');
  byColumn('fanout_tickets', 'Tickets by state', 'tickets', 'state', 'state');
  byColumn('fanout_plans', 'Redistribution plans by state', 'plans', 'state', 'state');
  byColumn('fanout_targets', 'Targets of all jobs by state', 'targets', 'state', 'state');
  byColumn('fanout_relay_jobs', "Jobs at relays by the relay's state", 'relay_jobs', 'state', 'state');
  byColumn('fanout_mail', 'Ticket mails by state (pending is the backlog)', 'outbox', 'state', 'state');
  byColumn(
    'fanout_webhooks',
    'Webhook deliveries by state (pending is the backlog)',
    'webhook_outbox',
    'state',
    'state',
  );
  new Gauge({
    name: 'fanout_mail_attempts',
    help: 'SMTP attempts made for ticket mails, all told',
    registers: [registry],
    async collect() {
      const [r] = await store.scan<{ n: number }>('select coalesce(sum(attempts), 0) as n from outbox');
      this.set(Number(r?.n ?? 0));
    },
  });
  new Gauge({
    name: 'fanout_relay_last_seen_seconds',
    help: "Seconds since each relay's last heartbeat",
    labelNames: ['relay'],
    registers: [registry],
    async collect() {
      const rows = await db.selectFrom('relays').select(['id', 'last_heartbeat']).execute();
      this.reset();
      for (const r of rows)
        if (r.last_heartbeat) this.set({ relay: r.id }, (Date.now() - Date.parse(r.last_heartbeat)) / 1000);
    },
  });
}
