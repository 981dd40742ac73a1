// A rollout's HTTP face beyond `POST /api/v1/jobs` with rings: list, resume, abort (DESIGN §13, §16).
import { z } from 'zod';
import { whoIs } from '../common/auth.ts';
import type { App } from '../common/server.ts';
import { ViewQuery } from '../protocol/page.ts';
import type { Db } from '../store/index.ts';
import { rolloutList } from './rollout-view.ts';
import type { Rollouts } from './rollouts.ts';

export function rolloutRoutes(s: App, db: Db, rollouts: Rollouts) {
  const Id = z.object({ id: z.string().min(1).max(200) });
  s.get('/api/v1/rollouts', { schema: { querystring: ViewQuery } }, async (req) =>
    rolloutList(db, req.query.view === 'summary'),
  );
  s.post('/api/v1/jobs/:id/resume', { schema: { params: Id } }, async (req) => rollouts.resume(req.params.id));
  s.post('/api/v1/jobs/:id/abort', { schema: { params: Id } }, async (req) =>
    rollouts.abort(req.params.id, whoIs(req.principal)),
  );
}
