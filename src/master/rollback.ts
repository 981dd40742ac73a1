// `fanout job rollback ID` (DESIGN §13): a job that points each target's `current` back at the version
// it ran before job ID. The command signs allowDowngrade, so endpoints go down only because the master
// said so; a version still in the install root (--keep-versions) is switched to without a download.
import { FanoutError } from '../protocol/errors.ts';
import type { PackageRef } from '../protocol/types.ts';
import type { Db } from '../store/index.ts';
import type { Jobs } from './jobs.ts';

/** The jobs a rollback of jobId would make: one per set of earlier versions, and the targets left alone. */
export interface RollbackPlan {
  rollbackOf: string;
  /** The package names job rollbackOf installed: what goes back. */
  packages: string[];
  jobs: { packages: string[]; targets: string[] }[];
  skipped: string[];
}

export async function rollbackPlan(db: Db, jobId: string): Promise<RollbackPlan> {
  const job = await db.selectFrom('jobs').selectAll().where('id', '=', jobId).executeTakeFirst();
  if (!job) throw new FanoutError('FANOUT_ERR_JOB_UNKNOWN', { jobId, where: '' });
  const names = (JSON.parse(job.packages) as PackageRef[]).map((p) => p.name);
  const targets = await db.selectFrom('targets').select('device_id').where('job_id', '=', jobId).execute();
  // What each target ran before: its last installed job before this one, for these packages.
  const earlier = await db
    .selectFrom('targets as t')
    .innerJoin('jobs as j', 'j.id', 't.job_id')
    .select(['t.device_id', 'j.packages', 'j.created_at'])
    .where('t.state', '=', 'installed')
    .where('j.created_at', '<', job.created_at)
    .where(
      't.device_id',
      'in',
      targets.map((t) => t.device_id),
    )
    .orderBy('j.created_at')
    .execute();
  const before = new Map<string, Map<string, string>>(); // device → name → name@version
  for (const e of earlier)
    for (const p of JSON.parse(e.packages) as PackageRef[])
      if (names.includes(p.name)) {
        const m = before.get(e.device_id) ?? new Map<string, string>();
        m.set(p.name, `${p.name}@${p.version}`);
        before.set(e.device_id, m);
      }
  // Targets that ran the same earlier versions go back together, in one job.
  const groups = new Map<string, string[]>();
  const nothingBefore: string[] = [];
  for (const { device_id } of targets) {
    const specs = [...(before.get(device_id)?.values() ?? [])].sort();
    if (!specs.length) nothingBefore.push(device_id);
    else groups.set(specs.join(' '), [...(groups.get(specs.join(' ')) ?? []), device_id]);
  }
  return {
    rollbackOf: jobId,
    packages: names,
    jobs: [...groups].map(([specs, devices]) => ({ packages: specs.split(' '), targets: devices })),
    skipped: nothingBefore,
  };
}

/** `fanout job rollback ID`: makes the jobs rollbackPlan shows, or refuses when there is nothing to go back to. */
export async function rollback(db: Db, jobs: Jobs, jobId: string, by: string) {
  const plan = await rollbackPlan(db, jobId);
  if (!plan.jobs.length)
    throw new FanoutError('FANOUT_ERR_INPUT_INVALID', {
      detail: `no target of job ${jobId} ran an earlier version of ${plan.packages.join(', ')}: there is nothing to go back to`,
    });
  const created: string[] = [];
  for (const { packages, targets } of plan.jobs) {
    const r = await jobs.create({ packages, targets, params: { allowDowngrade: true, rollbackOf: jobId } }, by);
    created.push(r.jobId);
  }
  return { jobId: created[0], jobs: created, rollbackOf: jobId, skipped: plan.skipped };
}
