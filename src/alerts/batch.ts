// One intake batch's view of the database: what the ten steps read is loaded once per batch with
// set-based queries, and the rows they write go out together at the end. The steps then cost about
// the same whether a batch holds one alert or thousands. It all happens inside the batch's
// transaction under the intake lock, so what is loaded cannot change underneath.
import type { Transaction } from 'kysely';
import type { Database } from '../store/index.ts';
import { FailedRecords, relayOf } from './failed-records.ts';
import type { Locations } from './location.ts';
import type { LocationCache } from './location-cache.ts';
import type { IncomingAlert } from './parse.ts';

type Tx = Transaction<Database>;
type AlertRow = Omit<Database['alerts'], 'id'>;
export type Device = Database['devices'];
export type Ticket = Database['tickets'];
/** A stored alert as the batch knows it; a row written by this batch gets its id when flushed. */
export interface Stored {
  id?: number;
  outcome: string;
  ticketId: string | null;
}

/** Rows per statement: 17 parameters a row stays far below SQLite's and PostgreSQL's limits. */
const CHUNK = 500;
const chunks = <T>(xs: T[]) =>
  Array.from({ length: Math.ceil(xs.length / CHUNK) }, (_, i) => xs.slice(i * CHUNK, (i + 1) * CHUNK));
const key = (...parts: (string | null | undefined)[]) => parts.join('\0');

export class IntakeBatch {
  private readonly stored = new Map<string, Stored>();
  private readonly devices = new Map<string, Device>();
  private readonly overrides = new Map<string, number>();
  private readonly open = new Map<string, Ticket>();
  private outages: Database['outages'][] = [];
  private relaysDown = new Map<string, string>();
  private pending: { row: AlertRow; stored: Stored }[] = [];
  locations!: Locations;
  readonly failed: FailedRecords;

  private constructor(
    private readonly tx: Tx,
    /** Told the highest id each time pending rows are written. */
    private readonly onInserted: (topId: number) => void,
  ) {
    this.failed = new FailedRecords(tx);
  }

  static async load(tx: Tx, alerts: IncomingAlert[], locations: LocationCache, onInserted: (topId: number) => void) {
    const b = new IntakeBatch(tx, onInserted);
    const names = [...new Set(alerts.flatMap((a) => (a.deviceId ? [a.deviceId] : [])))];
    const bySource = new Map<string, Set<string>>();
    for (const a of alerts) bySource.set(a.source, (bySource.get(a.source) ?? new Set()).add(a.alertId));
    b.locations = await locations.current(tx);
    const down = await tx
      .selectFrom('relays')
      .select(['id', 'down_since'])
      .where('down_since', 'is not', null)
      .execute();
    b.relaysDown = new Map(down.map((r) => [r.id, r.down_since!]));
    for (const [source, alertIds] of bySource)
      for (const ids of chunks([...alertIds])) {
        const rows = await tx
          .selectFrom('alerts')
          .select(['id', 'alert_id', 'outcome', 'ticket_id'])
          .where('source', '=', source)
          .where('alert_id', 'in', ids)
          .execute();
        for (const r of rows)
          b.stored.set(key(source, r.alert_id), { id: Number(r.id), outcome: r.outcome, ticketId: r.ticket_id });
      }
    for (const part of chunks(names)) {
      const rows = await tx
        .selectFrom('devices')
        .selectAll()
        .where((eb) => eb.or([eb('id', 'in', part), eb('hostname', 'in', part)]))
        .execute();
      // A device id wins over another device's hostname, as the identify step says.
      for (const d of rows) if (d.hostname && !b.devices.has(d.hostname)) b.devices.set(d.hostname, d);
      for (const d of rows) b.devices.set(d.id, d);
    }
    const ids = [...new Set([...b.devices.values()].map((d) => d.id))];
    const times = alerts.map((a) => a.at).sort();
    for (const part of chunks(ids)) {
      const [overrides, open] = await Promise.all([
        tx.selectFrom('device_overrides').selectAll().where('device_id', 'in', part).execute(),
        tx.selectFrom('tickets').selectAll().where('device_id', 'in', part).where('state', '!=', 'resolved').execute(),
      ]);
      for (const o of overrides) b.overrides.set(key(o.device_id, o.failure_type), o.threshold);
      for (const t of open) b.open.set(key(t.device_id, t.failure_type), t);
    }
    if (ids.length && times.length)
      b.outages = await tx
        .selectFrom('outages')
        .selectAll()
        .where('until_at', '>', times[0])
        .where('from_at', '<=', times[times.length - 1])
        .execute();
    // Step 5's records, on the relay the steps will name (an alert of an unknown device has none).
    await b.failed.load(
      alerts.flatMap((a) => {
        const d = a.deviceId ? b.devices.get(a.deviceId) : undefined;
        const relayId = d && relayOf(a, d);
        return a.jobId && relayId ? [{ relayId, jobId: a.jobId }] : [];
      }),
    );
    return b;
  }

  /** An alert already stored under this source's id (before this batch, or earlier in it). */
  duplicateOf(a: IncomingAlert) {
    return this.stored.get(key(a.source, a.alertId));
  }

  /** Step 3: a device by its id, or else by its hostname. */
  device(name: string) {
    return this.devices.get(name);
  }

  /** The relay's down-since time, when its heartbeats stopped and have not resumed. */
  relayDownSince(relayId: string) {
    return this.relaysDown.get(relayId);
  }

  outageCovering(device: Device, at: string) {
    return this.outages.find(
      (o) => (o.device_id === device.id || o.location === device.location) && o.from_at <= at && o.until_at > at,
    );
  }

  override(deviceId: string, failureType: string) {
    return this.overrides.get(key(deviceId, failureType));
  }

  openTicket(deviceId: string, failureType: string) {
    return this.open.get(key(deviceId, failureType));
  }

  /** A ticket made or changed in this batch: later alerts of the batch see it as it is now. */
  async ticketChanged(ticketId: string) {
    const t = await this.tx.selectFrom('tickets').selectAll().where('id', '=', ticketId).executeTakeFirstOrThrow();
    this.open.set(key(t.device_id, t.failure_type), t);
  }

  /** Queues an alert row; its id comes when the row is written. */
  add(row: AlertRow): Stored {
    const stored: Stored = { outcome: row.outcome, ticketId: row.ticket_id };
    this.pending.push({ row, stored });
    this.stored.set(key(row.source, row.alert_id), stored);
    return stored;
  }

  /** Writes the queued rows: before a query that reads alerts, and at the end of the batch. */
  async flush() {
    const rows = this.pending;
    this.pending = [];
    let top = 0;
    for (const part of chunks(rows)) {
      const ids = await this.tx
        .insertInto('alerts')
        .values(part.map((p) => p.row))
        .returning(['id', 'source', 'alert_id'])
        .execute();
      // Matched by (source, alert id), unique in the table: no reliance on the order rows come back in.
      const byAlert = new Map(ids.map((r) => [key(r.source, r.alert_id), Number(r.id)]));
      for (const p of part) {
        p.stored.id = byAlert.get(key(p.row.source, p.row.alert_id))!;
        top = Math.max(top, p.stored.id);
      }
    }
    if (rows.length) this.onInserted(top);
  }

  /** Ends the batch: the rows, then the failed-distribution counts. */
  async finish() {
    await this.flush();
    await this.failed.write();
  }
}
