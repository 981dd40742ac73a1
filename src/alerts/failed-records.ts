// Step 5 for a whole intake batch: the open failed-distribution records of the batch's relays and
// jobs, read once; counted in memory as alerts come, and each changed record written once at the end.
import { sql, type Transaction } from 'kysely';
import { type Database, perStatement } from '../store/index.ts';
import type { IncomingAlert } from './incoming.ts';

type Tx = Transaction<Database>;
export interface Failed {
  id: number;
  alert_count: number;
  last_seen: string;
  ticket_id: string | null;
  dirty: boolean;
}
const key = (relayId: string, jobId: string, failureType: string) => `${relayId}\0${jobId}\0${failureType}`;
const pair = (relayId: string, jobId: string) => `${relayId}\0${jobId}`;

/** The relay a failed distribution is recorded on: the alert's, else the device's (a relay itself). */
export const relayOf = (
  a: Pick<IncomingAlert, 'relayId'>,
  device: Pick<Database['devices'], 'id' | 'kind' | 'relay'>,
) => a.relayId ?? (device.kind === 'relay' ? device.id : device.relay);
type Row = Omit<Failed, 'dirty'> & { relay_id: string; job_id: string; failure_type: string };

/** The open failed-distribution records, to be narrowed by relay and job (its index). */
export const openFailed = (tx: Tx) =>
  tx
    .selectFrom('failed_distributions')
    .select(['id', 'relay_id', 'job_id', 'failure_type', 'alert_count', 'last_seen', 'ticket_id'])
    .where('state', '!=', 'resolved');

export class FailedRecords {
  private readonly open = new Map<string, Failed>();
  /** Pairs whose open records were read: a pair outside them is looked up on its own first. */
  private readonly known = new Set<string>();

  constructor(private readonly tx: Tx) {}

  /** Open records read ahead by the batch (`openFailed`), for these pairs and maybe others. */
  keep(rows: Row[]) {
    for (const f of rows)
      this.open.set(key(f.relay_id, f.job_id, f.failure_type), { ...f, id: Number(f.id), dirty: false });
  }

  /** Every open record of these pairs has been kept. */
  loaded(pairs: { relayId: string; jobId: string }[]) {
    for (const p of pairs) this.known.add(pair(p.relayId, p.jobId));
  }

  /** The open record of this job on this relay and type, counted once more; made if there is none. */
  async count(relayId: string, jobId: string, failureType: string, at: string) {
    const k = key(relayId, jobId, failureType);
    if (!this.known.has(pair(relayId, jobId))) {
      this.keep(await openFailed(this.tx).where('relay_id', '=', relayId).where('job_id', '=', jobId).execute());
      this.known.add(pair(relayId, jobId));
    }
    const f = this.open.get(k);
    if (f) {
      f.alert_count++;
      if (at > f.last_seen) f.last_seen = at;
      f.dirty = true;
      return f;
    }
    // Made at once: a new ticket lists the relay's failed jobs from the table.
    const ins = await this.tx
      .insertInto('failed_distributions')
      .values({
        relay_id: relayId,
        job_id: jobId,
        failure_type: failureType,
        first_seen: at,
        last_seen: at,
        alert_count: 1,
        ticket_id: null,
        state: 'open',
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    const made = { id: Number(ins.id), alert_count: 1, last_seen: at, ticket_id: null, dirty: false };
    this.open.set(k, made);
    return made;
  }

  /** A record now belongs to a ticket. */
  attach(f: Failed, ticketId: string) {
    if (f.ticket_id === ticketId) return;
    f.ticket_id = ticketId;
    f.dirty = true;
  }

  /** Writes every changed record (or what is left of `changes()`). */
  async write(updates = this.changes()) {
    for (const u of updates) await u.execute();
  }

  /** The statements that write every changed record, one per few hundred; the records count as written. */
  changes() {
    const dirty = [...this.open.values()].filter((f) => f.dirty);
    for (const f of dirty) f.dirty = false;
    return perStatement(dirty).map((part) => {
      // Typed by cast: a CASE of bare parameters is text to PostgreSQL.
      const byId = <T extends string | number | null>(type: string, value: (f: Failed) => T) =>
        sql<T>`case id ${sql.join(
          part.map((f) => sql`when ${f.id} then cast(${value(f)} as ${sql.raw(type)})`),
          sql` `,
        )} end`;
      return this.tx
        .updateTable('failed_distributions')
        .set({
          alert_count: byId('integer', (f) => f.alert_count),
          last_seen: byId('text', (f) => f.last_seen),
          ticket_id: byId('text', (f) => f.ticket_id),
        })
        .where(
          'id',
          'in',
          part.map((f) => f.id),
        );
    });
  }
}
