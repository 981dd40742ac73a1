// A relay report's target states, written. On PostgreSQL every statement is a round trip, and a
// report of a thousand targets made a thousand: there a hundred go in one `update … from (values …)`.
// SQLite runs in this process; there each target is its own statement, as cheap as it gets.
import { sql, type Transaction } from 'kysely';
import { jobEnd } from '../protocol/job-end.ts';
import { type Database, foldTargets, isPostgres, perStatement } from '../store/index.ts';

export type TargetRow = Omit<Database['targets'], 'relay_id'>;

/** Each target's new state, for targets of `relayId` only: a relay speaks only for those it was given. */
export async function writeTargets(tx: Transaction<Database>, relayId: string, rows: TargetRow[]) {
  // What the fleet view reads follows the rows written, and only those.
  const written: TargetRow[] = [];
  if (!isPostgres(tx)) {
    for (const row of rows) {
      const { job_id, device_id, ...state } = row;
      const r = await tx
        .updateTable('targets')
        .set(state)
        .where('job_id', '=', job_id)
        .where('device_id', '=', device_id)
        .where('relay_id', '=', relayId)
        .executeTakeFirst();
      if (r.numUpdatedRows) written.push(row);
    }
    return foldTargets(tx, written);
  }
  // A report holds a target's states in the order they came: its last one stands, as one by one.
  const last = new Map(rows.map((r) => [`${r.job_id}\0${r.device_id}`, r]));
  for (const part of perStatement([...last.values()], 100)) {
    const values = part.map(
      (r) =>
        sql`(${r.job_id}, ${r.device_id}, ${r.state}, cast(${r.attempt} as integer), ${r.failure_type}, ${r.error}, ${r.updated_at}, ${r.attestation})`,
    );
    const r = await sql<{ job_id: string; device_id: string }>`update targets as t set state = c.state,
      attempt = c.attempt, failure_type = c.failure_type, error = c.error, updated_at = c.updated_at,
      attestation = c.attestation
      from (values ${sql.join(values)}) as c (job_id, device_id, state, attempt, failure_type, error, updated_at, attestation)
      where t.job_id = c.job_id and t.device_id = c.device_id and t.relay_id = ${relayId}
      returning t.job_id, t.device_id`.execute(tx);
    for (const w of r.rows) written.push(last.get(`${w.job_id}\0${w.device_id}`)!);
  }
  await foldTargets(tx, written);
}

/** Of these jobs, those complete at `relayId` (protocol/job-end.ts), their targets counted by the database. */
export async function completeAt(tx: Transaction<Database>, relayId: string, jobIds: string[]) {
  const done = new Set<string>();
  for (const part of perStatement(jobIds, 500)) {
    const rows = await tx
      .selectFrom('targets')
      .select((eb) => [
        'job_id',
        eb.fn.countAll().as('targets'),
        eb.fn.sum<number>(sql`case when state in ('installed', 'failed') then 1 else 0 end`).as('ended'),
        eb.fn.sum<number>(sql`case when state = 'failed' then 1 else 0 end`).as('failed'),
      ])
      .where('relay_id', '=', relayId)
      .where('job_id', 'in', part)
      .groupBy('job_id')
      .execute();
    for (const r of rows) {
      const counts = { targets: Number(r.targets), ended: Number(r.ended), failed: Number(r.failed) };
      if (jobEnd(counts) === 'complete') done.add(r.job_id);
    }
  }
  return done;
}

/**
 * Records these jobs as complete at `relayId`; the ones not recorded before, to announce. The insert
 * is the one decision: another master's, for the same report at the same moment, waits for this
 * transaction and then finds the row.
 */
export async function recordComplete(tx: Transaction<Database>, relayId: string, jobIds: Set<string>, at: string) {
  if (!jobIds.size) return [];
  const recorded = await tx
    .insertInto('job_completions')
    .values([...jobIds].map((job_id) => ({ job_id, relay_id: relayId, at })))
    .onConflict((oc) => oc.columns(['job_id', 'relay_id']).doNothing())
    .returning('job_id')
    .execute();
  return recorded.map((r) => r.job_id);
}
