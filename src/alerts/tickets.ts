// Tickets and failed distributions: lists, state changes, and the repair that closes them (DESIGN §7).
import type { Transaction } from 'kysely';
import { FanoutError } from '../protocol/errors.ts';
import { FIRST_PAGE, type Page } from '../protocol/page.ts';
import type { Database, Db } from '../store/index.ts';
import { openFailuresOf } from './ticket-failures.ts';
import { ticketView } from './ticket-view.ts';
import { type Announce, announceNothing } from './webhooks.ts';

/** What a list may be narrowed to: a ticket's or a failed distribution's states, or all but resolved. */
export const TICKET_STATES = ['open', 'sent', 'send_failed', 'acknowledged', 'resolved', 'unresolved'] as const;
export const FAILED_STATES = ['open', 'redistributing', 'resolved', 'unresolved'] as const;
type TicketStateFilter = (typeof TICKET_STATES)[number];
type FailedStateFilter = (typeof FAILED_STATES)[number];

export class Tickets {
  /** Queues webhook events in the transaction that changes a ticket (main.ts sets it). */
  announce: Announce = announceNothing;

  constructor(private readonly db: Db) {}

  /** Newest first; `unresolved` is every state but resolved. */
  async list(page: Page = FIRST_PAGE, only: { state?: TicketStateFilter; device?: string } = {}) {
    let q = this.db.selectFrom('tickets').selectAll();
    if (only.state === 'unresolved') q = q.where('state', '!=', 'resolved');
    else if (only.state) q = q.where('state', '=', only.state);
    if (only.device) q = q.where('device_id', '=', only.device);
    return (await q.orderBy('created_at', 'desc').limit(page.limit).offset(page.offset).execute()).map(ticketView);
  }

  async view(id: string) {
    return ticketView(await this.get(id));
  }

  async get(id: string, db: Db | Transaction<Database> = this.db) {
    const t = await db.selectFrom('tickets').selectAll().where('id', '=', id).executeTakeFirst();
    if (!t) throw new FanoutError('FANOUT_ERR_TICKET_UNKNOWN', { id });
    return t;
  }

  /** `by` resolved it: a ticket that becomes resolved is announced (ticket.resolved) with the change. */
  async setState(id: string, state: 'acknowledged' | 'resolved', by: string) {
    return this.db.transaction().execute(async (tx) => {
      // A resolved ticket stays resolved: acknowledging it would reopen it. The update itself says
      // so, not a read before it, which a resolve on another master could follow.
      const changed = await tx
        .updateTable('tickets')
        .set({ state, updated_at: new Date().toISOString() })
        .where('id', '=', id)
        .where('state', 'not in', state === 'acknowledged' ? [state, 'resolved'] : [state])
        .returningAll()
        .executeTakeFirst();
      if (!changed) {
        const t = await this.get(id, tx);
        if (state === 'acknowledged' && t.state === 'resolved')
          throw new FanoutError('FANOUT_ERR_TICKET_STATE', {
            id,
            why: 'it is resolved; acknowledging it would reopen it',
          });
        return ticketView(t);
      }
      const view = ticketView(changed);
      if (state === 'resolved') await this.announce(tx, 'ticket.resolved', { ticket: view, by });
      return view;
    });
  }

  /** The open failed distributions a ticket's alerts fed (ticket-failures.ts). */
  openFailures(ticketId: string) {
    return openFailuresOf(this.db, ticketId);
  }

  async failedList(page: Page = FIRST_PAGE, only: { state?: FailedStateFilter; relay?: string; job?: string } = {}) {
    let q = this.db.selectFrom('failed_distributions').selectAll();
    if (only.state === 'unresolved') q = q.where('state', '!=', 'resolved');
    else if (only.state) q = q.where('state', '=', only.state);
    if (only.relay) q = q.where('relay_id', '=', only.relay);
    if (only.job) q = q.where('job_id', '=', only.job);
    const rows = await q.orderBy('id', 'desc').limit(page.limit).offset(page.offset).execute();
    return rows.map((f) => ({
      id: Number(f.id),
      relayId: f.relay_id,
      jobId: f.job_id,
      failureType: f.failure_type,
      state: f.state,
      ticketId: f.ticket_id,
      firstSeen: f.first_seen,
      lastSeen: f.last_seen,
      alertCount: f.alert_count,
    }));
  }

  async markRedistributing(relayId: string, jobId: string) {
    await this.db
      .updateTable('failed_distributions')
      .set({ state: 'redistributing' })
      .where('relay_id', '=', relayId)
      .where('job_id', '=', jobId)
      .where('state', '=', 'open')
      .execute();
  }

  /**
   * Step 6 of §7: every target installed → records resolved, and the job's tickets closed, each
   * announced (ticket.resolved) with `by` saying why.
   */
  async resolveJob(relayId: string, jobId: string, by: string) {
    const open = await this.db
      .selectFrom('failed_distributions')
      .select(['id', 'ticket_id'])
      .where('relay_id', '=', relayId)
      .where('job_id', '=', jobId)
      .where('state', '!=', 'resolved')
      .execute();
    // Also the tickets of its endpoints that name this job (each drifted endpoint has its own ticket).
    const naming = await this.db
      .selectFrom('tickets')
      .select(['id', 'jobs', 'device_id'])
      .where('state', '!=', 'resolved')
      .where('jobs', 'like', `%${JSON.stringify(jobId)}%`)
      .execute();
    const named: typeof naming = [];
    for (const t of naming) {
      if (!(JSON.parse(t.jobs) as string[]).includes(jobId)) continue;
      const target = await this.db
        .selectFrom('targets')
        .select('device_id')
        .where('job_id', '=', jobId)
        .where('relay_id', '=', relayId)
        .where('device_id', '=', t.device_id)
        .executeTakeFirst();
      if (target || t.device_id === relayId) named.push(t);
    }
    if (!open.length && !named.length) return false;
    const now = new Date().toISOString();
    await this.db.transaction().execute(async (tx) => {
      if (open.length)
        await tx
          .updateTable('failed_distributions')
          .set({ state: 'resolved', last_seen: now })
          .where(
            'id',
            'in',
            open.map((o) => o.id),
          )
          .execute();
      const ticketIds = [
        ...new Set([...open.map((o) => o.ticket_id).filter((t): t is string => !!t), ...named.map((t) => t.id)]),
      ];
      if (!ticketIds.length) return;
      // The tickets this update resolves, and only those, are announced: a resolve by another master
      // at the same moment closes each ticket once.
      const closed = await tx
        .updateTable('tickets')
        .set({ state: 'resolved', updated_at: now })
        .where('id', 'in', ticketIds)
        .where('state', '!=', 'resolved')
        .returningAll()
        .execute();
      for (const t of closed.sort((a, b) => (a.id < b.id ? -1 : 1)))
        await this.announce(tx, 'ticket.resolved', { ticket: ticketView(t), by });
    });
    return true;
  }
}
