// A job as the master shows it: the sum of its relays' reports (DESIGN §5).
import { FanoutError } from '../protocol/errors.ts';
import { jobEnd } from '../protocol/job-end.ts';
import type { JobParams, PackageRef } from '../protocol/types.ts';
import type { Db } from '../store/index.ts';

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
}

export async function jobView(db: Db, jobId: string): Promise<JobView> {
  const job = await db.selectFrom('jobs').selectAll().where('id', '=', jobId).executeTakeFirst();
  if (!job) throw new FanoutError('FANOUT_ERR_JOB_UNKNOWN', { jobId, where: '' });
  const [targets, commands, relayJobs] = await Promise.all([
    db.selectFrom('targets').selectAll().where('job_id', '=', jobId).orderBy('device_id').execute(),
    db
      .selectFrom('commands')
      .select(['relay_id', 'acked_at'])
      .where('job_id', '=', jobId)
      .where('kind', '=', 'distribute')
      .orderBy('relay_id')
      .execute(),
    db.selectFrom('relay_jobs').selectAll().where('job_id', '=', jobId).execute(),
  ]);
  const byRelay = new Map(relayJobs.map((r) => [r.relay_id, r]));
  const counts: Record<string, number> = {};
  for (const t of targets) counts[t.state] = (counts[t.state] ?? 0) + 1;
  return {
    jobId,
    state: jobEnd(targets.map((t) => t.state)) ?? 'running',
    createdAt: job.created_at,
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
    targets: targets.map((t) => ({
      deviceId: t.device_id,
      relayId: t.relay_id,
      state: t.state,
      attempt: t.attempt,
      failureType: t.failure_type,
      error: t.error,
      updatedAt: t.updated_at,
      attestation: t.attestation ? JSON.parse(t.attestation) : null,
    })),
    counts,
  };
}
