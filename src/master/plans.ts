// Redistribution plans as the master sees them: asked of a relay, shown, approved or rejected.

import type { AskedJob } from '../alerts/routes.ts';
import type { Tickets } from '../alerts/tickets.ts';
import type { Logger } from '../common/log.ts';
import { HttpError } from '../protocol/client.ts';
import { type ErrorCode, errorTable, FanoutError } from '../protocol/errors.ts';
import { FIRST_PAGE, type Page } from '../protocol/page.ts';
import type { Plan, SkippedJob } from '../protocol/types.ts';
import { type Db, oneOf } from '../store/index.ts';
import type { Config } from './config.ts';
import { movedOnInFleet, savePlans } from './plan-rows.ts';
import type { RelayRegistry } from './relays.ts';

/** A plan as stored: the relay's plan, in the state the master last learned. */
const planOf = (row: { body: string; state: string }): Plan => ({
  ...(JSON.parse(row.body) as Plan),
  state: row.state as Plan['state'],
});

export class Plans {
  onChange: () => void = () => {};
  constructor(
    private readonly db: Db,
    private readonly relays: RelayRegistry,
    private readonly tickets: Tickets,
    private readonly cfg: Config['redistribution'],
    private readonly log: Logger,
  ) {}

  private async save(relayId: string, plans: Plan[]) {
    await savePlans(this.db, relayId, plans);
    this.onChange();
  }

  /** Asks a relay for plans: those it made, and why it made none for the others. */
  async request(relayId: string, jobId?: string) {
    const client = await this.relays.adminClient(relayId);
    const { plans, skipped = [] } = await relayAnswer(
      relayId,
      client.post<{ plans: Plan[]; skipped?: SkippedJob[] }>('admin/v1/redistribute/plans', { jobId }),
    );
    await this.save(relayId, plans);
    // Every target not installed moved on to a newer version: the failure no longer stands, and is
    // not asked about again at each heartbeat.
    for (const s of skipped) {
      if (!s.settled) continue;
      // A relay's word alone closes no ticket: the master's own record of what the devices run must agree.
      if (!(await movedOnInFleet(this.db, relayId, s.jobId)))
        this.log.warn({ relayId, jobId: s.jobId, why: s.reason }, 'relay says settled; the fleet record disagrees');
      else if (await this.tickets.resolveJob(relayId, s.jobId, `settled: ${s.reason}`))
        this.log.info(
          { relayId, jobId: s.jobId, why: s.reason },
          'failed distribution settled: records and tickets resolved',
        );
    }
    return { plans, skipped: skipped.map(({ jobId, reason }) => ({ relayId, jobId, why: reason })) };
  }

  async decide(planId: string, decision: 'approve' | 'reject', by: string): Promise<Plan> {
    const row = await this.db.selectFrom('plans').selectAll().where('id', '=', planId).executeTakeFirst();
    if (!row) throw new FanoutError('FANOUT_ERR_PLAN_UNKNOWN', { planId, where: 'the master' });
    if (row.state !== 'pending')
      throw new FanoutError('FANOUT_ERR_PLAN_STATE', { planId, why: `it is ${row.state}, not pending` });
    const client = await this.relays.adminClient(row.relay_id);
    const { plan } = await relayAnswer(
      row.relay_id,
      client.post<{ plan: Plan }>(`admin/v1/redistribute/plans/${encodeURIComponent(planId)}/${decision}`, { by }),
    );
    await this.save(row.relay_id, [plan]);
    if (decision === 'approve') await this.tickets.markRedistributing(plan.relayId, plan.jobId);
    return plan;
  }

  /** One plan whole (its targets, packages, what it leaves out and why), as the master mirrors it. */
  async get(planId: string): Promise<Plan> {
    const row = await this.db.selectFrom('plans').selectAll().where('id', '=', planId).executeTakeFirst();
    if (!row) throw new FanoutError('FANOUT_ERR_PLAN_UNKNOWN', { planId, where: 'the master' });
    return planOf(row);
  }

  async list(page: Page = FIRST_PAGE, only: { state?: Plan['state'] } = {}) {
    let q = this.db.selectFrom('plans').selectAll();
    if (only.state) q = q.where('state', '=', only.state);
    const rows = await q.orderBy('created_at', 'desc').limit(page.limit).offset(page.offset).execute();
    return rows.map(planOf);
  }

  /**
   * Resolving a ticket asks each affected relay for a plan, and approves it where the policy says so.
   * A relay that cannot be asked now is named in `waiting`; it is asked again when it is back.
   */
  async afterTicketResolved(ticketId: string, by: string) {
    const out = { plans: [] as Plan[], waiting: [] as AskedJob[], none: [] as AskedJob[] };
    if (!this.cfg.planOnTicketResolve) return out;
    for (const f of await this.tickets.openFailures(ticketId)) {
      try {
        const { plans, skipped } = await this.request(f.relay_id, f.job_id);
        out.none.push(...skipped);
        for (const p of plans)
          out.plans.push(
            this.cfg.autoApprove && p.state === 'pending' ? await this.decide(p.planId, 'approve', `auto (${by})`) : p,
          );
      } catch (err) {
        this.log.warn(
          { err: (err as Error).message, ticketId, relayId: f.relay_id, jobId: f.job_id },
          'relay cannot be asked for a plan now; asking again when it is back',
        );
        out.waiting.push({ relayId: f.relay_id, jobId: f.job_id, why: (err as Error).message });
        // Asked for when the relay is back (wanted): through this ticket, if the record named a later one.
        if (f.ticket_id !== ticketId)
          await this.db
            .updateTable('failed_distributions')
            .set({ ticket_id: ticketId })
            .where('id', '=', f.id)
            .execute();
      }
    }
    return out;
  }

  /**
   * Failed distributions of these relays whose tickets were resolved: plans the master still wants.
   * Not once an operator has rejected one since: a plan asked for by hand comes after that.
   */
  private wanted(relays: string | readonly string[]) {
    return this.db
      .selectFrom('failed_distributions as f')
      .innerJoin('tickets as t', 't.id', 'f.ticket_id')
      .select(['f.job_id'])
      .where((eb) =>
        typeof relays === 'string' ? eb('f.relay_id', '=', relays) : oneOf(this.db, 'f.relay_id', relays),
      )
      .where('f.state', '=', 'open')
      .where('t.state', '=', 'resolved')
      .where(({ not, exists, selectFrom }) =>
        not(
          exists(
            selectFrom('plans as p')
              .select('p.id')
              .whereRef('p.relay_id', '=', 'f.relay_id')
              .whereRef('p.job_id', '=', 'f.job_id')
              .where('p.state', '=', 'rejected')
              .whereRef('p.updated_at', '>=', 't.updated_at'),
          ),
        ),
      );
  }

  /**
   * Of these relays, those that owe plans: one read for a batch of heartbeats, from an index. Most
   * find nothing owed and write nothing.
   */
  async owing(relayIds: readonly string[]) {
    if (!relayIds.length) return new Set<string>();
    const rows = await this.wanted(relayIds).clearSelect().select('f.relay_id').distinct().execute();
    return new Set(rows.map((r) => r.relay_id));
  }

  /** A relay is back: plans wanted from it (its jobs' tickets resolved, no plan yet) are asked for now. */
  async askWanted(relayId: string) {
    const wanted = await this.wanted(relayId).execute();
    for (const w of wanted) {
      const has = await this.db
        .selectFrom('plans')
        .select('id')
        .where('relay_id', '=', relayId)
        .where('job_id', '=', w.job_id)
        .where('state', 'in', ['pending', 'running', 'approved'])
        .executeTakeFirst();
      if (has || !this.cfg.planOnTicketResolve) continue;
      try {
        for (const p of (await this.request(relayId, w.job_id)).plans)
          if (this.cfg.autoApprove && p.state === 'pending')
            await this.decide(p.planId, 'approve', 'auto (relay back)');
        this.log.info({ relayId, jobId: w.job_id }, 'relay back: redistribution plan asked for');
      } catch (err) {
        this.log.warn({ err: (err as Error).message, relayId, jobId: w.job_id }, 'relay still cannot give a plan');
      }
    }
  }
}

/** A relay's refusal keeps its code and words (a stale plan is 409, not 500); silence is "unreachable". */
export async function relayAnswer<T>(relayId: string, p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (e) {
    if (e instanceof HttpError && e.status >= 400 && e.code in errorTable) {
      const err = new FanoutError('FANOUT_ERR_RELAY_UNREACHABLE', { relayId, why: e.message });
      Object.assign(err, { code: e.code as ErrorCode, message: `relay ${relayId}: ${e.message}` });
      throw err;
    }
    if (e instanceof HttpError) throw new FanoutError('FANOUT_ERR_RELAY_UNREACHABLE', { relayId, why: e.message });
    throw e;
  }
}
