// A relay's plans as the master keeps them (a row each, as the relay last described it), and as the
// dashboard is sent them.
import type { Transaction } from 'kysely';
import type { Plan } from '../protocol/types.ts';
import type { Database, Db } from '../store/index.ts';

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

/** The first names of each list and how many there are: the dashboard's view of a plan for 10,000 targets. */
const SHOWN = 20;
export function planSummary(p: Plan) {
  return {
    ...p,
    distributionList: p.distributionList.slice(0, SHOWN),
    distributionCount: p.distributionList.length,
    original: {
      distributionList: p.original.distributionList.slice(0, SHOWN),
      installed: p.original.installed.slice(0, SHOWN),
      targets: p.original.distributionList.length,
      installedCount: p.original.installed.length,
      ...(p.original.movedOn
        ? { movedOn: p.original.movedOn.slice(0, SHOWN), movedOnCount: p.original.movedOn.length }
        : {}),
    },
  };
}
