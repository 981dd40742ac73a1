// A relay's plans as the master keeps them (a row each, as the relay last described it), as the
// dashboard is sent them, and the master's check of a relay's word that no plan will be needed.
import type { Transaction } from 'kysely';
import type { Plan } from '../protocol/types.ts';
import { compareVersions } from '../protocol/versions.ts';
import { type Database, type Db, perStatement } from '../store/index.ts';

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

/**
 * Of a failed job's targets at this relay not installed, those the master's own record has running a
 * newer version of one of the job's packages, and why: the endpoint would refuse the job's version.
 * It sees what a relay's own job log cannot, such as an install through a fallback relay.
 */
export async function fleetMovedOn(db: Db, relayId: string, jobId: string) {
  const out = new Map<string, string>();
  const job = await db.selectFrom('jobs').select('packages').where('id', '=', jobId).executeTakeFirst();
  const mine = JSON.parse(job?.packages ?? '[]') as { name: string; version: string }[];
  if (!mine.length) return { known: false, open: 0, movedOn: out };
  const open = await db
    .selectFrom('targets')
    .select('device_id')
    .where('job_id', '=', jobId)
    .where('relay_id', '=', relayId)
    .where('state', '!=', 'installed')
    .execute();
  for (const part of perStatement(open, 500)) {
    const runs = await db
      .selectFrom('device_packages')
      .select(['device_id', 'name', 'version', 'at'])
      .where(
        'device_id',
        'in',
        part.map((t) => t.device_id),
      )
      .where('state', 'in', ['attested', 'installed'])
      .execute();
    for (const r of runs) {
      const theirs = mine.find((p) => p.name === r.name);
      if (theirs && compareVersions(r.version, theirs.version) > 0 && !out.has(r.device_id))
        out.set(r.device_id, `the master's fleet record has ${r.name}@${r.version} there since ${r.at}`);
    }
  }
  return { known: true, open: open.length, movedOn: out };
}

/**
 * The master's own record agrees with a relay that a failed job is settled: every target of the job
 * at this relay not installed runs a newer version of one of its packages.
 */
export async function movedOnInFleet(db: Db, relayId: string, jobId: string) {
  const { known, open, movedOn } = await fleetMovedOn(db, relayId, jobId);
  return known && movedOn.size === open;
}
