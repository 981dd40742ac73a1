// A rollout as operators read it: its rings, each ring's job and progress, and why it halted.
import { FanoutError } from '../protocol/errors.ts';
import type { Db } from '../store/index.ts';
import { heldRollout } from './job-view.ts';
import type { Ring } from './rings.ts';
import { ringJob } from './rollout-rows.ts';

/** summary: each ring's size instead of its devices (a rollout to 10,000 endpoints names them all). */
export async function rolloutView(db: Db, id: string, summary = false) {
  const r = await db.selectFrom('rollouts').selectAll().where('id', '=', id).executeTakeFirst();
  if (!r) throw new FanoutError('FANOUT_ERR_JOB_UNKNOWN', { jobId: id, where: ' as a rollout' });
  const rings = JSON.parse(r.rings) as Ring[];
  const held = heldRollout(r.id, rings);
  const views = await Promise.all(rings.map((g) => (g.jobId ? ringJob(db, g.jobId, held) : undefined)));
  const counts: Record<string, number> = {};
  for (const v of views) for (const [k, n] of Object.entries(v?.counts ?? {})) counts[k] = (counts[k] ?? 0) + n;
  return {
    jobId: r.id,
    rollout: true,
    state: r.state,
    reason: r.reason,
    packages: JSON.parse(r.packages) as string[],
    params: JSON.parse(r.params),
    haltOnFailureRate: r.halt_rate,
    ringWaitMs: r.ring_wait_ms,
    createdAt: r.created_at,
    createdBy: r.created_by,
    currentRing: r.current + 1,
    rings: rings.map((g, i) => ({
      ring: i + 1,
      percent: g.percent,
      ...(summary ? {} : { devices: g.devices }),
      deviceCount: g.devices.length,
      jobId: g.jobId,
      state: views[i]?.state ?? 'waiting',
      counts: views[i]?.counts ?? {},
      failureRate: g.failureRate,
    })),
    counts,
    total: rings.reduce((n, g) => n + g.devices.length, 0),
  };
}

export async function rolloutList(db: Db, summary = false) {
  const rows = await db.selectFrom('rollouts').select('id').orderBy('created_at', 'desc').limit(100).execute();
  return Promise.all(rows.map((r) => rolloutView(db, r.id, summary)));
}
