// The relay's admin API (DATA/admin.token): its jobs as the job log has them, redistribution
// plans, and re-verification requests.
import { z } from 'zod';
import type { App } from '../common/server.ts';
import { FanoutError } from '../protocol/errors.ts';
import { type PackageRef, Plan } from '../protocol/types.ts';
import type { JobSummary } from './job-summary.ts';
import type { RelayHttpDeps } from './routes.ts';
import type { JobState } from './state.ts';

const packageBrief = (p: PackageRef) => ({ name: p.name, version: p.version, digest: p.digest, size: p.size });

export function jobSummary(st: JobState) {
  return {
    jobId: st.jobId,
    state: st.phase,
    failure: st.failure ?? null,
    commandId: st.current.commandId,
    kind: st.current.kind,
    packages: st.current.packages.map(packageBrief),
    distributionList: st.current.distributionList,
    targets: st.original.distributionList.map((d) => ({ deviceId: d, ...st.targets.get(d)! })),
    redistributions: st.redistributions,
  };
}

export function jobBrief(s: JobSummary) {
  return {
    jobId: s.jobId,
    state: s.phase,
    failure: s.failure ?? null,
    commandId: s.commandId,
    kind: s.kind,
    packages: s.packages.map(packageBrief),
    targets: { total: s.targets, installed: s.installed, failed: s.failed },
    redistributions: s.redistributions,
  };
}

/** The admin API (DATA/admin.token): jobs as the job log has them, and redistribution plans. */
export function relayAdminRoutes(s: App, d: RelayHttpDeps) {
  const Id = z.object({ id: z.string().min(1).max(200) });
  const By = z.object({ by: z.string().min(1).max(200).default('operator') }).prefault({});
  // The list holds every job the relay has run: each as a few counts, not its targets.
  s.get('/admin/v1/jobs', async () => d.jobs.summaries().map(jobBrief));
  s.get('/admin/v1/jobs/:id', { schema: { params: Id } }, async (req) => {
    const st = d.jobs.get(req.params.id);
    if (!st)
      throw new FanoutError('FANOUT_ERR_JOB_UNKNOWN', {
        jobId: req.params.id,
        where: ` in relay ${d.relayId}'s job log`,
      });
    return jobSummary(st);
  });
  s.get('/admin/v1/redistribute/plans', async () => ({ plans: d.redistributor.list() }));
  s.post(
    '/admin/v1/redistribute/plans',
    { schema: { body: z.object({ jobId: z.string().optional(), dryRun: z.boolean().optional() }).prefault({}) } },
    async (req) => d.redistributor.plan(req.body.jobId, { dryRun: req.body.dryRun }),
  );
  s.post('/admin/v1/redistribute/plans/:id/approve', { schema: { params: Id, body: By } }, async (req) => ({
    plan: await d.redistributor.approve(req.params.id, req.body.by),
  }));
  s.post('/admin/v1/redistribute/plans/:id/reject', { schema: { params: Id, body: By } }, async (req) => ({
    plan: d.redistributor.reject(req.params.id, req.body.by),
  }));
  // `fanout device verify` at the master: these endpoints hash their installed versions now.
  s.post(
    '/admin/v1/verify',
    {
      schema: {
        body: z.object({ requestId: z.string().min(1).max(200), devices: z.array(z.string().max(200)).max(100_000) }),
      },
    },
    async (req) => {
      d.verifications.request(req.body.requestId, req.body.devices);
      return { asked: req.body.devices.length };
    },
  );
  // The tool ran on this host with --data and built the plan from the job log itself.
  s.post(
    '/admin/v1/redistribute/submit',
    { schema: { body: z.object({ plan: Plan, approvedBy: z.string().min(1).max(200) }) } },
    async (req) => ({
      plan: await d.redistributor.submit(req.body.plan, req.body.approvedBy),
    }),
  );
}
