// A rollout's row, written only as it was read (compare and set), its rings' jobs, and the alert of a
// halted ring: what the rollouts' control writes and reads besides jobs.
import { FanoutError } from '../protocol/errors.ts';
import type { Database, Db } from '../store/index.ts';
import { jobView, type RolloutRings } from './job-view.ts';
import type { RaiseAlert } from './relays.ts';
import type { Ring } from './rings.ts';
import type { RolloutRequest } from './rollouts.ts';

export type RolloutRow = Database['rollouts'];
/** A new rollout's row, running its first ring. */
export function rolloutRow(id: string, req: RolloutRequest, rings: Ring[], by: string): RolloutRow {
  const now = new Date().toISOString();
  return {
    id,
    packages: JSON.stringify(req.packages),
    params: JSON.stringify(req.params ?? {}),
    rings: JSON.stringify(rings),
    halt_rate: req.haltOnFailureRate ?? 100,
    ring_wait_ms: req.ringWaitMs ?? 0,
    state: 'running',
    current: 0,
    reason: null,
    created_at: now,
    updated_at: now,
    created_by: by,
  };
}

/** What jobs.create refuses for good: a ring whose job gets one of these will never start. */
const REFUSED: string[] = [
  'FANOUT_ERR_PACKAGE_UNKNOWN',
  'FANOUT_ERR_DEVICE_UNKNOWN',
  'FANOUT_ERR_JOB_NO_TARGETS',
  'FANOUT_ERR_INPUT_INVALID',
];
export const refusedForGood = (e: unknown): e is FanoutError => e instanceof FanoutError && REFUSED.includes(e.code);

export type RolloutChange = { rings?: Ring[]; state?: string; current?: number; reason?: string | null };

/**
 * Writes a rollout's change only if nobody changed it since `r` was read (its state, ring and rings
 * as read), and brings `r` up to date. Two ticks at once (a long one and the next, or two masters
 * when a tick outlasts its claim) and an operator's resume or abort then cannot undo each other's
 * writes or start a ring twice; the one that finds the rollout changed reads it again.
 */
export async function saveRollout(db: Db, r: RolloutRow, set: RolloutChange) {
  const next = {
    ...(set.rings ? { rings: JSON.stringify(set.rings) } : {}),
    ...(set.state ? { state: set.state } : {}),
    ...(set.current !== undefined ? { current: set.current } : {}),
    ...(set.reason !== undefined ? { reason: set.reason } : {}),
    updated_at: new Date().toISOString(),
  };
  const done = await db
    .updateTable('rollouts')
    .set(next)
    .where('id', '=', r.id)
    .where('state', '=', r.state)
    .where('current', '=', r.current)
    .where('rings', '=', r.rings)
    .executeTakeFirst();
  if (Number(done.numUpdatedRows) !== 1) return false;
  Object.assign(r, next);
  return true;
}

/** A ring's job; none for a moment after its ring started (its id is saved before it is created). */
export const ringJob = (db: Db, jobId: string, rollout?: RolloutRings) =>
  jobView(db, jobId, true, rollout).catch((e) => {
    if (e instanceof FanoutError && e.code === 'FANOUT_ERR_JOB_UNKNOWN') return undefined;
    throw e;
  });

/** ROLLOUT_HALTED, about the relay whose targets failed most in that ring. */
export async function raiseHalted(db: Db, raise: RaiseAlert, id: string, jobId: string, reason: string) {
  const failed = await db
    .selectFrom('targets')
    .select(['relay_id'])
    .where('job_id', '=', jobId)
    .where('state', '=', 'failed')
    .execute();
  const byRelay = new Map<string, number>();
  for (const f of failed) byRelay.set(f.relay_id, (byRelay.get(f.relay_id) ?? 0) + 1);
  const relayId = [...byRelay].sort((a, b) => b[1] - a[1])[0]?.[0];
  if (!relayId) return;
  await raise({
    source: 'master',
    alertId: `${id}/halted/${jobId}`,
    // No job on the alert: a halted ring is not a failed distribution of a relay (its failed targets are).
    deviceId: relayId,
    failureType: 'ROLLOUT_HALTED',
    message: `rollout ${id} halted at job ${jobId}: ${reason}`,
    at: new Date().toISOString(),
  });
}
