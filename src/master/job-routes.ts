// Jobs over HTTP: create (or a rollout, with rings), read as a whole or as a summary, targets a page
// at a time, roll back.
import { z } from 'zod';
import { whoIs } from '../common/auth.ts';
import type { App } from '../common/server.ts';
import { parseDuration } from '../protocol/durations.ts';
import { FanoutError } from '../protocol/errors.ts';
import { PageQuery, ViewQuery } from '../protocol/page.ts';
import { JOB_STATES, jobList, jobView, targetPage } from './job-view.ts';
import { rollback, rollbackPlan } from './rollback.ts';
import { rolloutView } from './rollout-view.ts';
import type { AdminDeps } from './routes.ts';

const Id = z.object({ id: z.string().min(1).max(200) });

export function jobRoutes(s: App, d: AdminDeps) {
  const JobBody = z.object({
    packages: z.array(z.string()).max(100),
    targets: z.array(z.string()).optional(),
    labels: z.record(z.string(), z.string()).optional(),
    params: z.record(z.string(), z.unknown()).optional(),
    /** A rollout (DESIGN §13): cumulative percentages of the targets, ring by ring. */
    rings: z.array(z.number().positive().max(100)).min(1).max(20).optional(),
    haltOnFailureRate: z.number().min(0).max(100).optional(),
    ringWait: z
      .string()
      .regex(/^\d+(ms|s|m|h|d)$/, 'a duration like 30s, 10m, 1h')
      .optional(),
  });
  s.post('/api/v1/jobs', { schema: { body: JobBody } }, async (req) => {
    const by = whoIs(req.principal);
    const made = req.body.rings
      ? await d.rollouts.create(
          { ...req.body, rings: req.body.rings, ringWaitMs: req.body.ringWait ? parseDuration(req.body.ringWait) : 0 },
          by,
        )
      : await d.jobs.create(req.body, by);
    req.auditTarget = made.jobId;
    return made;
  });
  s.get(
    '/api/v1/jobs',
    {
      schema: {
        querystring: PageQuery.extend({
          limit: PageQuery.shape.limit.default(100),
          ...ViewQuery.shape,
          state: z.enum(JOB_STATES).optional(),
        }),
      },
    },
    async (req) => jobList(d.db, req.query, req.query.view === 'summary'),
  );
  s.get('/api/v1/jobs/:id', { schema: { params: Id, querystring: ViewQuery } }, async (req) =>
    (await d.rollouts.find(req.params.id))
      ? rolloutView(d.db, req.params.id)
      : jobView(d.db, req.params.id, req.query.view === 'summary'),
  );
  // A plain job stopped at its relays (a rollout is stopped with abort, which cancels its running ring).
  s.post('/api/v1/jobs/:id/cancel', { schema: { params: Id } }, async (req) => {
    const id = req.params.id;
    if (await d.rollouts.find(id))
      throw new FanoutError('FANOUT_ERR_INPUT_INVALID', {
        detail: `${id} is a rollout: \`fanout job abort ${id}\` stops it and cancels its running ring`,
      });
    const { state } = await jobView(d.db, id, true);
    if (state !== 'running')
      throw new FanoutError('FANOUT_ERR_INPUT_INVALID', { detail: `job ${id} is ${state}: nothing to cancel` });
    await d.cancel(id, whoIs(req.principal));
    return { jobId: id, state: 'cancelling' };
  });
  // What a rollback would do, changing nothing: `job rollback --dry-run` and the dashboard's confirmation.
  s.get('/api/v1/jobs/:id/rollback', { schema: { params: Id } }, async (req) => rollbackPlan(d.db, req.params.id));
  s.post('/api/v1/jobs/:id/rollback', { schema: { params: Id } }, async (req) => ({
    ...(await rollback(d.db, d.jobs, req.params.id, whoIs(req.principal))),
    state: 'running',
  }));
  s.get('/api/v1/jobs/:id/targets', { schema: { params: Id, querystring: PageQuery } }, async (req) => {
    await jobView(d.db, req.params.id, true); // an unknown job is 404, not an empty page
    return targetPage(d.db, req.params.id, req.query);
  });
}
