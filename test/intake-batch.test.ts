// A batch of alerts (alerts/batch.ts) goes through the ten steps exactly as the same alerts one at a
// time: the same outcomes and steps, the same tickets, the same failed-distribution counts. The mix
// has resends inside the batch, hostnames, unknown devices, jobs, a threshold that opens a ticket
// and then attaches to it, an outage, a per-device threshold, a relay that is down, late alerts.
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { AlertCenter } from '../src/alerts/center.ts';
import { FailedRecords, openFailed } from '../src/alerts/failed-records.ts';
import type { IncomingAlert } from '../src/alerts/incoming.ts';
import { parseConfig } from '../src/master/config.ts';
import { importInventory, parseInventory } from '../src/master/inventory.ts';
import { openStore, type Store } from '../src/store/index.ts';
import { inventoryYaml, tempDir } from './helpers.ts';
import { pgDatabase } from './pg.ts';

const T0 = Date.parse('2026-11-20T10:00:00Z');
const DEVICES = [
  'relay-a-pos-1',
  'relay-a-pos-2',
  'pos2.store-a',
  'relay-b-pos-1',
  'relay-b-pos-3',
  'ghost-9',
  'relay-a',
  'relay-b',
];
const MESSAGES = ['ENOSPC: no space left on device', 'connect ECONNREFUSED 10.0.0.1:443', 'checksum mismatch'];

function alerts(n: number): IncomingAlert[] {
  let x = 7;
  const rand = () => (x = (x * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const out: IncomingAlert[] = [];
  for (let i = 0; i < n; i++) {
    // Every tenth alert repeats an earlier one (a resend); a fifth come late by up to two hours.
    if (i > 0 && i % 10 === 0) {
      out.push({ ...out[Math.floor(rand() * out.length)] });
      continue;
    }
    const at = new Date(T0 + i * 30_000 - (rand() < 0.2 ? Math.floor(rand() * 7_200_000) : 0)).toISOString();
    out.push({
      source: rand() < 0.9 ? 'api' : 'relay-a',
      alertId: `a-${i}`,
      format: 'json',
      raw: '{}',
      at,
      deviceId: DEVICES[Math.floor(rand() * DEVICES.length)],
      message: MESSAGES[Math.floor(rand() * MESSAGES.length)],
      jobId: rand() < 0.7 ? `j-${Math.floor(rand() * 3)}` : undefined,
      relayId: rand() < 0.1 ? 'relay-b' : undefined,
    });
  }
  return out;
}

async function prepared(url: string) {
  const store = await openStore(url);
  await importInventory(store.db, await parseInventory(inventoryYaml(['relay-a', 'relay-b'], 3)));
  await store.db.updateTable('devices').set({ hostname: 'pos2.store-a' }).where('id', '=', 'relay-a-pos-2').execute();
  await store.db
    .insertInto('device_overrides')
    .values({ device_id: 'relay-b-pos-1', failure_type: 'UNREACHABLE', threshold: 2 })
    .execute();
  await store.db
    .insertInto('outages')
    .values({
      id: 'o-1',
      device_id: 'relay-a-pos-1',
      location: null,
      from_at: new Date(T0 + 600_000).toISOString(),
      until_at: new Date(T0 + 1_800_000).toISOString(),
      reason: 'store refit',
      created_at: new Date(T0).toISOString(),
    })
    .execute();
  await store.db
    .insertInto('relays')
    .values({
      id: 'relay-b',
      url: null,
      admin_token: null,
      last_heartbeat: null,
      down_since: new Date(T0).toISOString(),
    })
    .execute();
  const center = new AlertCenter(store.db, parseConfig('alerts:\n  window: 1h\n').alerts, (id) => `http://x/${id}`);
  return { store, center };
}

/** What a user sees: every step (ticket ids, which are random, named by device and type), tickets, records. */
async function seen(store: Store, center: AlertCenter, ids: number[]) {
  const tickets = await store.db.selectFrom('tickets').selectAll().execute();
  const name = new Map(tickets.map((t) => [t.id, `${t.device_id}/${t.failure_type}`]));
  const plain = (s: string) =>
    s.replace(/\bt-[0-9A-Za-z_-]+/g, (m) => name.get(m) ?? m).replace(/record \d+/g, 'record');
  const views = [];
  for (const id of ids) {
    const v = await center.get(id);
    views.push({
      outcome: v.outcome,
      steps: (v.steps as { step: string; outcome: string; detail?: string }[]).map(
        (s) => `${s.step}: ${plain(s.outcome)} — ${plain(s.detail ?? '')}`,
      ),
    });
  }
  const failed = await store.db
    .selectFrom('failed_distributions')
    .select(['relay_id', 'job_id', 'failure_type', 'alert_count', 'first_seen', 'last_seen', 'ticket_id', 'state'])
    .execute();
  const outbox = await store.db.selectFrom('outbox').select(['ticket_id', 'subject']).execute();
  const byText = (a: object, b: object) => JSON.stringify(a).localeCompare(JSON.stringify(b));
  return {
    views,
    tickets: tickets
      .map((t) => ({ key: name.get(t.id), jobs: t.jobs, state: t.state, summary: t.summary }))
      .sort(byText),
    failed: failed.map((f) => ({ ...f, ticket_id: f.ticket_id && name.get(f.ticket_id) })).sort(byText),
    outbox: outbox.map((o) => ({ ticket: name.get(o.ticket_id), subject: plain(o.subject) })).sort(byText),
  };
}

describe.each([
  { backend: 'sqlite', open: async () => ({ url: join(tempDir('batch'), 'db.sqlite'), drop: async () => {} }) },
  { backend: 'postgres', open: pgDatabase },
])('a batch of alerts ($backend)', ({ open }) => {
  const drops: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const d of drops) await d();
  });

  it('goes through the ten steps exactly as the same alerts one at a time', async () => {
    // More than one slice of 500 alerts read together (batch.ts).
    const input = alerts(1100);
    const one = await open();
    const all = await open();
    drops.push(one.drop, all.drop);
    const a = await prepared(one.url);
    const b = await prepared(all.url);
    try {
      const singly = [];
      for (const x of input) singly.push(...(await a.center.ingest([x])));
      const together = await b.center.ingest(input);

      expect(together.map((r) => [r.duplicate, r.outcome])).toEqual(singly.map((r) => [r.duplicate, r.outcome]));
      // A resend inside the batch answers with the first one's id, as it does across requests.
      const first = new Map<string, number>();
      for (const [i, x] of input.entries())
        if (!first.has(`${x.source}/${x.alertId}`)) first.set(`${x.source}/${x.alertId}`, i);
      for (const [i, x] of input.entries())
        expect(together[i].id).toBe(together[first.get(`${x.source}/${x.alertId}`)!].id);
      expect(new Set(together.map((r) => r.id)).size).toBe(first.size);

      const x = await seen(
        a.store,
        a.center,
        singly.map((r) => r.id),
      );
      const y = await seen(
        b.store,
        b.center,
        together.map((r) => r.id),
      );
      expect(y).toEqual(x);
      // The mix reached every outcome, so the comparison covers every step.
      const outcomes = new Set(x.views.map((v) => v.outcome));
      for (const o of [
        'ticket',
        'attached_to_open_ticket',
        'below_threshold',
        'suppressed',
        'inhibited',
        'unknown_device',
      ])
        expect(outcomes).toContain(o);
      expect(x.failed.some((f) => f.alert_count > 1 && f.ticket_id)).toBe(true);
    } finally {
      await a.store.close();
      await b.store.close();
    }
  });

  it('counts the open record of a relay and job it did not read ahead, rather than making a second', async () => {
    const db = await open();
    drops.push(db.drop);
    const store = await openStore(db.url);
    try {
      await store.db.transaction().execute(async (tx) => {
        const first = new FailedRecords(tx);
        first.loaded([]);
        const made = await first.count('relay-a', 'j-1', 'DISK_FULL', '2026-11-20T10:00:00Z');
        await first.write();
        const next = new FailedRecords(tx);
        next.keep(await openFailed(tx).where('relay_id', '=', 'relay-b').where('job_id', '=', 'j-1').execute());
        next.loaded([{ relayId: 'relay-b', jobId: 'j-1' }]);
        const again = await next.count('relay-a', 'j-1', 'DISK_FULL', '2026-11-20T10:01:00Z');
        expect(again).toMatchObject({ id: made.id, alert_count: 2, last_seen: '2026-11-20T10:01:00Z' });
        await next.write();
      });
      expect(await store.db.selectFrom('failed_distributions').select('alert_count').execute()).toEqual([
        { alert_count: 2 },
      ]);
    } finally {
      await store.close();
    }
  });
});
