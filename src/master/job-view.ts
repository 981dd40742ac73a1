// A job as the master shows it: the sum of its relays' reports (DESIGN §5).

import type { Selectable } from 'kysely';
import { FanoutError } from '../protocol/errors.ts';
import { type JobParams, type PackageRef, TargetState } from '../protocol/types.ts';
import type { Database, Db } from '../store/index.ts';

export interface TargetView {
  deviceId: string;
  relayId: string;
  state: string;
  attempt: number;
  failureType: string | null;
  error: string | null;
  updatedAt: string;
  /** The tree hashes the endpoint attested with its last `installed` (DESIGN §17). */
  attestation: Record<string, string> | null;
}

export interface JobView {
  jobId: string;
  state: 'running' | 'complete' | 'failed';
  createdAt: string;
  /** Who created it: the token's person, or `admin`; a rollout's rings and a rollback name who asked. */
  createdBy: string;
  packages: PackageRef[];
  params: JobParams;
  /** `state` is null until the relay has the command on disk (`delivered`). */
  relays: {
    relayId: string;
    delivered: boolean;
    state: string | null;
    failureType: string | null;
    error: string | null;
  }[];
  targets: TargetView[];
  counts: Record<string, number>;
  /** How many targets in all (the summary has counts, not the targets). */
  total: number;
  /** The rollout this job is a ring of: its id, the ring's number (from 1) and how many rings it has. */
  ringOf: { rollout: string; ring: number; of: number } | null;
}

/**
 * A job as operators read it. `summary`: without the targets (counts only), what the dashboard lists
 * and refreshes on every change; a job's targets come a page at a time (targetPage).
 */
export async function jobView(
  db: Db,
  jobId: string,
  summary = false,
  rollouts: RolloutRings = new Map(),
): Promise<JobView> {
  const job = await db.selectFrom('jobs').selectAll().where('id', '=', jobId).executeTakeFirst();
  if (!job) throw new FanoutError('FANOUT_ERR_JOB_UNKNOWN', { jobId, where: '' });
  const [targets, stateCounts, commands, relayJobs, rollout] = await Promise.all([
    summary
      ? Promise.resolve([])
      : db.selectFrom('targets').selectAll().where('job_id', '=', jobId).orderBy('device_id').execute(),
    db
      .selectFrom('targets')
      .select(['state', (eb) => eb.fn.countAll<number>().as('n')])
      .where('job_id', '=', jobId)
      .groupBy('state')
      .execute(),
    db
      .selectFrom('commands')
      .select(['relay_id', 'acked_at'])
      .where('job_id', '=', jobId)
      .where('kind', '=', 'distribute')
      .orderBy('relay_id')
      .execute(),
    db.selectFrom('relay_jobs').selectAll().where('job_id', '=', jobId).execute(),
    job.rollout_id ? ringsOf(db, job.rollout_id, rollouts) : undefined,
  ]);
  const byRelay = new Map(relayJobs.map((r) => [r.relay_id, r]));
  const counts: Record<string, number> = {};
  for (const c of stateCounts) counts[c.state] = Number(c.n);
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  const ended = (counts.installed ?? 0) + (counts.failed ?? 0) === total && total > 0;
  return {
    jobId,
    state: !ended ? 'running' : counts.failed ? 'failed' : 'complete',
    createdAt: job.created_at,
    createdBy: job.created_by,
    packages: JSON.parse(job.packages),
    params: JSON.parse(job.params),
    relays: commands.map((c) => {
      const r = byRelay.get(c.relay_id);
      return {
        relayId: c.relay_id,
        delivered: !!c.acked_at || !!r,
        state: r?.state ?? null,
        failureType: r?.failure_type ?? null,
        error: r?.error ?? null,
      };
    }),
    targets: targets.map(targetView),
    counts,
    total,
    ringOf:
      job.rollout_id && rollout
        ? { rollout: job.rollout_id, ring: rollout.indexOf(jobId) + 1, of: rollout.length }
        : null,
  };
}

/**
 * Each rollout's ring job ids, read once for a list however many of its rings the list shows, or
 * given by a caller that holds the rollout already (heldRollout).
 */
export type RolloutRings = Map<string, Promise<(string | null)[] | undefined>>;
export const heldRollout = (id: string, rings: readonly { jobId: string | null }[]): RolloutRings =>
  new Map([[id, Promise.resolve(rings.map((g) => g.jobId))]]);
function ringsOf(db: Db, id: string, seen: RolloutRings) {
  let rings = seen.get(id);
  if (!rings) {
    // A rollout's rings hold every target's id: parsed once, not once per ring's job.
    rings = db
      .selectFrom('rollouts')
      .select('rings')
      .where('id', '=', id)
      .executeTakeFirst()
      .then((r) => r && (JSON.parse(r.rings) as { jobId: string | null }[]).map((g) => g.jobId));
    seen.set(id, rings);
  }
  return rings;
}

const targetView = (t: Selectable<Database['targets']>): TargetView => ({
  deviceId: t.device_id,
  relayId: t.relay_id,
  state: t.state,
  attempt: t.attempt,
  failureType: t.failure_type,
  error: t.error,
  updatedAt: t.updated_at,
  attestation: t.attestation ? JSON.parse(t.attestation) : null,
});

export const JOB_STATES = ['running', 'complete', 'failed'] as const;
const ENDED: TargetState[] = ['installed', 'failed'];
const UNFINISHED = TargetState.options.filter((s) => !ENDED.includes(s));

/**
 * Jobs, newest first; with a state, only jobs in it. A job's state is not kept but follows from its
 * targets (as jobView derives it), so the filter asks targets_state whether any is in a given state.
 */
export async function jobList(
  db: Db,
  page: { limit: number; offset: number; state?: (typeof JOB_STATES)[number] },
  summary = false,
) {
  const jobs = await db
    .selectFrom('jobs')
    .select('id')
    .$if(!!page.state, (q) =>
      q.where((eb) => {
        const any = (states: TargetState[]) =>
          eb.exists(
            eb
              .selectFrom('targets as t')
              .select('t.job_id')
              .whereRef('t.job_id', '=', 'jobs.id')
              .where('t.state', 'in', states),
          );
        const ended = eb.and([eb.not(any(UNFINISHED)), any(ENDED)]);
        if (page.state === 'running') return eb.not(ended);
        if (page.state === 'failed') return eb.and([ended, any(['failed'])]);
        return eb.and([ended, eb.not(any(['failed']))]);
      }),
    )
    .orderBy('created_at', 'desc')
    .limit(page.limit)
    .offset(page.offset)
    .execute();
  const rollouts: RolloutRings = new Map();
  return Promise.all(jobs.map((j) => jobView(db, j.id, summary, rollouts)));
}

/** A page of a job's targets, those that failed first, then by device. */
export async function targetPage(db: Db, jobId: string, page: { limit: number; offset: number }) {
  const rows = await db
    .selectFrom('targets')
    .selectAll()
    .where('job_id', '=', jobId)
    .orderBy((eb) => eb.case().when('state', '=', 'failed').then(0).else(1).end())
    .orderBy('device_id')
    .limit(page.limit)
    .offset(page.offset)
    .execute();
  return rows.map(targetView);
}

/** What changed, for the dashboard's live updates: these jobs, these lists; none given means anything. */
export interface Change {
  jobs?: string[];
  lists?: ('alerts' | 'tickets' | 'failed' | 'plans' | 'outbox' | 'outages' | 'relays' | 'fleet')[];
}
