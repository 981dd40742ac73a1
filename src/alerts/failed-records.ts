// Step 5 for a whole intake batch: the open failed-distribution records of the batch's relays and
// jobs, read once; counted in memory as alerts come, and each changed record written once at the end.
import type { Transaction } from 'kysely';
import type { Database } from '../store/index.ts';
import type { IncomingAlert } from './parse.ts';

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
/** Relays per statement, well under SQLite's and PostgreSQL's parameter limits. */
const CHUNK = 500;

export class FailedRecords {
  private readonly open = new Map<string, Failed>();
  /** Pairs read by `load`: a pair outside them is looked up on its own before a record is made. */
  private readonly loaded = new Set<string>();

  constructor(private readonly tx: Tx) {}

  /** The open records of these relays and jobs, by the (relay, job) index: never every relay's. */
  async load(pairs: { relayId: string; jobId: string }[]) {
    const jobs = [...new Set(pairs.map((p) => p.jobId))];
    const relays = [...new Set(pairs.map((p) => p.relayId))];
    for (let at = 0; jobs.length && at < relays.length; at += CHUNK)
      this.keep(
        await this.select()
          .where('relay_id', 'in', relays.slice(at, at + CHUNK))
          .where('job_id', 'in', jobs)
          .execute(),
      );
    for (const p of pairs) this.loaded.add(pair(p.relayId, p.jobId));
  }

  private select() {
    return this.tx
      .selectFrom('failed_distributions')
      .select(['id', 'relay_id', 'job_id', 'failure_type', 'alert_count', 'last_seen', 'ticket_id'])
      .where('state', '!=', 'resolved');
  }

  private keep(rows: Row[]) {
    for (const f of rows)
      this.open.set(key(f.relay_id, f.job_id, f.failure_type), { ...f, id: Number(f.id), dirty: false });
  }

  /** The open record of this job on this relay and type, counted once more; made if there is none. */
  async count(relayId: string, jobId: string, failureType: string, at: string) {
    const k = key(relayId, jobId, failureType);
    if (!this.loaded.has(pair(relayId, jobId))) {
      this.keep(await this.select().where('relay_id', '=', relayId).where('job_id', '=', jobId).execute());
      this.loaded.add(pair(relayId, jobId));
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

  async write() {
    for (const f of this.open.values())
      if (f.dirty)
        await this.tx
          .updateTable('failed_distributions')
          .set({ alert_count: f.alert_count, last_seen: f.last_seen, ticket_id: f.ticket_id })
          .where('id', '=', f.id)
          .execute();
  }
}
