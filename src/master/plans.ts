// Redistribution plans as the master sees them: asked of a relay, shown, approved or rejected.

import type { Transaction } from 'kysely';
import type { Tickets } from '../alerts/tickets.ts';
import type { Logger } from '../common/log.ts';
import { FanoutError } from '../protocol/errors.ts';
import type { Plan } from '../protocol/types.ts';
import type { Database, Db } from '../store/index.ts';
import type { Config } from './config.ts';
import type { RelayRegistry } from './relays.ts';

/** Keeps a relay's plans as the relay last described them; a relay speaks only for its own plans. */
export async function savePlans(db: Db | Transaction<Database>, relayId: string, plans: Plan[]) {
  const now = new Date().toISOString();
  for (const p of plans) {
    const row = {
      id: p.planId,
      relay_id: relayId,
      job_id: p.jobId,
      body: JSON.stringify(p),
      state: p.state,
      created_at: p.createdAt,
      updated_at: now,
    };
    await db
      .insertInto('plans')
      .values(row)
      .onConflict((oc) =>
        oc
          .column('id')
          .doUpdateSet({ body: row.body, state: row.state, updated_at: now })
          .where('plans.relay_id', '=', relayId),
      )
      .execute();
  }
}

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

  async request(relayId: string, jobId?: string): Promise<Plan[]> {
    const client = await this.relays.adminClient(relayId);
    const { plans } = await client.post<{ plans: Plan[] }>('admin/v1/redistribute/plans', { jobId });
    await this.save(relayId, plans);
    return plans;
  }

  async decide(planId: string, decision: 'approve' | 'reject', by: string): Promise<Plan> {
    const row = await this.db.selectFrom('plans').selectAll().where('id', '=', planId).executeTakeFirst();
    if (!row) throw new FanoutError('FANOUT_ERR_PLAN_UNKNOWN', { planId, where: 'the master' });
    if (row.state !== 'pending')
      throw new FanoutError('FANOUT_ERR_PLAN_STATE', { planId, why: `it is ${row.state}, not pending` });
    const client = await this.relays.adminClient(row.relay_id);
    const { plan } = await client.post<{ plan: Plan }>(
      `admin/v1/redistribute/plans/${encodeURIComponent(planId)}/${decision}`,
      { by },
    );
    await this.save(row.relay_id, [plan]);
    if (decision === 'approve') await this.tickets.markRedistributing(plan.relayId, plan.jobId);
    return plan;
  }

  async list() {
    const rows = await this.db.selectFrom('plans').selectAll().orderBy('created_at', 'desc').execute();
    return rows.map((r) => ({ ...(JSON.parse(r.body) as Plan), state: r.state as Plan['state'] }));
  }

  /** Resolving a ticket asks each affected relay for a plan, and approves it where the policy says so. */
  async afterTicketResolved(ticketId: string, by: string) {
    if (!this.cfg.planOnTicketResolve) return [];
    const failures = await this.tickets.openFailures(ticketId);
    const out: Plan[] = [];
    for (const f of failures) {
      try {
        for (const p of await this.request(f.relay_id, f.job_id)) {
          out.push(
            this.cfg.autoApprove && p.state === 'pending' ? await this.decide(p.planId, 'approve', `auto (${by})`) : p,
          );
        }
      } catch (err) {
        this.log.error({ err, ticketId, relayId: f.relay_id, jobId: f.job_id }, 'could not get a redistribution plan');
      }
    }
    return out;
  }
}
