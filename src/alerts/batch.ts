// One intake batch's view of the database: what the ten steps read is loaded once per batch with
// set-based queries, sent as one statement (readTogether), and the rows they write go out together
// at the end. The steps then cost about the same whether a batch holds one alert or thousands. It
// all happens inside the batch's transaction under the intake lock, so what is loaded cannot
// change underneath.
import type { Transaction } from 'kysely';
import { type Database, isPostgres, perStatement, readTogether } from '../store/index.ts';
import type { AlertRow, AlertWriter } from './alert-rows.ts';
import { batchReads, type SliceRows, sliceReads } from './batch-reads.ts';
import { FailedRecords, relayOf } from './failed-records.ts';
import type { IncomingAlert } from './incoming.ts';
import type { Locations } from './location.ts';
import type { LocationCache } from './location-cache.ts';

type Tx = Transaction<Database>;
type FailedUpdate = ReturnType<FailedRecords['changes']>[number];
export type Device = Database['devices'];
export type Ticket = Database['tickets'];
/** A stored alert as the batch knows it; a row written by this batch gets its id when flushed. */
export interface Stored {
  id?: number;
  outcome: string;
  ticketId: string | null;
}

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
  /** The highest alert id when the batch began (track windows drop what they hold if it moved). */
  topId = 0;
  readonly failed: FailedRecords;

  private constructor(
    private readonly tx: Tx,
    /** Told the highest id each time pending rows are written. */
    private readonly onInserted: (topId: number) => void,
    private readonly writeAlert: AlertWriter,
  ) {
    this.failed = new FailedRecords(tx);
  }

  static async load(
    tx: Tx,
    alerts: IncomingAlert[],
    locations: LocationCache,
    onInserted: (topId: number) => void,
    writeAlert: AlertWriter,
  ) {
    const b = new IntakeBatch(tx, onInserted, writeAlert);
    const times = alerts.map((a) => a.at).sort();
    const found: Device[] = [];
    const take = (r: SliceRows) => {
      for (const a of r.stored)
        b.stored.set(key(a.source, a.alert_id), { id: Number(a.id), outcome: a.outcome, ticketId: a.ticket_id });
      found.push(...r.devices);
      for (const o of r.overrides) b.overrides.set(key(o.device_id, o.failure_type), o.threshold);
      for (const t of r.open) b.open.set(key(t.device_id, t.failure_type), t);
      b.failed.keep([...r.failed, ...r.failedOfGiven]);
    };
    // One statement per slice of alerts, the batch-wide reads with the first: on PostgreSQL each
    // statement is a wait.
    const [first, ...rest] = perStatement(alerts);
    const r = await readTogether(tx, {
      ...batchReads(tx, times[0] ?? '', times[times.length - 1] ?? ''),
      ...sliceReads(tx, first ?? []),
    });
    b.topId = Number(r.top[0]?.top ?? 0);
    const generation = Number(r.generation[0]?.value ?? 0);
    b.relaysDown = new Map(r.down.map((d) => [d.id, d.down_since!]));
    b.outages = r.outages;
    take(r);
    for (const slice of rest) take(await readTogether(tx, sliceReads(tx, slice)));
    // A device id wins over another device's hostname, as the identify step says.
    for (const d of found) if (d.hostname && !b.devices.has(d.hostname)) b.devices.set(d.hostname, d);
    for (const d of found) b.devices.set(d.id, d);
    b.locations = await locations.current(tx, generation);
    // Step 5's records were read for every relay the steps may name; these pairs are now known.
    b.failed.loaded(
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

  /**
   * Writes the queued rows: before a query that reads alerts, and at the end of the batch. `along`
   * goes with the last rows' insert as one statement (PostgreSQL only: each statement is a wait).
   */
  async flush(along?: FailedUpdate) {
    const rows = this.pending;
    this.pending = [];
    let top = 0;
    if (this.writeAlert && !along) {
      for (const p of rows) top = Math.max(top, (p.stored.id = this.writeAlert(p.row)));
      if (rows.length) this.onInserted(top);
      return;
    }
    // On PostgreSQL a hundred rows a statement: a text that comes again, which the pool prepares.
    const parts = perStatement(rows, isPostgres(this.tx) ? 100 : 500);
    for (const [i, part] of parts.entries()) {
      const db = along && i === parts.length - 1 ? this.tx.with('failed', () => along.returning('id')) : this.tx;
      const ids = await db
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
    const updates = this.failed.changes();
    const along = this.pending.length && isPostgres(this.tx) ? updates.shift() : undefined;
    await this.flush(along);
    await this.failed.write(updates);
  }
}
