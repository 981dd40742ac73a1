// Thresholds as configured and as changed at run time (per device and failure type).
import { z } from 'zod';
import type { App } from '../common/server.ts';
import { FanoutError } from '../protocol/errors.ts';
import { FAILURE_TYPE_NAME, FAILURE_TYPES } from '../protocol/failure-types.ts';
import type { AlertDeps } from './routes.ts';

export function thresholdRoutes(s: App, d: AlertDeps) {
  s.get('/api/v1/thresholds', async () => {
    const runtime = await d.db.selectFrom('device_overrides').selectAll().execute();
    return {
      window: d.cfg.window,
      defaultThreshold: d.cfg.defaultThreshold,
      failureTypes: d.cfg.failureTypes,
      deviceOverrides: [
        ...Object.entries(d.cfg.deviceOverrides).flatMap(([deviceId, m]) =>
          Object.entries(m).map(([failureType, threshold]) => ({ deviceId, failureType, threshold, source: 'config' })),
        ),
        ...runtime.map((r) => ({
          deviceId: r.device_id,
          failureType: r.failure_type,
          threshold: r.threshold,
          source: 'runtime',
        })),
      ],
    };
  });
  const Override = z.object({
    deviceId: z.string(),
    failureType: z.string().regex(FAILURE_TYPE_NAME),
    threshold: z.number().int().positive().max(100_000),
  });
  s.post('/api/v1/overrides', { schema: { body: Override } }, async (req) => {
    const o = req.body;
    if (!(await d.db.selectFrom('devices').select('id').where('id', '=', o.deviceId).executeTakeFirst()))
      throw new FanoutError('FANOUT_ERR_DEVICE_UNKNOWN', { ids: o.deviceId });
    await d.db
      .insertInto('device_overrides')
      .values({ device_id: o.deviceId, failure_type: o.failureType, threshold: o.threshold })
      .onConflict((oc) => oc.columns(['device_id', 'failure_type']).doUpdateSet({ threshold: o.threshold }))
      .execute();
    // Kept either way (a monitoring system may send a type not seen yet), but a misspelt type would
    // never apply: say when nothing knows it.
    const knownFailureType =
      (FAILURE_TYPES as readonly string[]).includes(o.failureType) ||
      o.failureType in d.cfg.failureTypes ||
      !!(await d.db
        .selectFrom('alerts')
        .select('id')
        .where('device_id', '=', o.deviceId)
        .where('failure_type', '=', o.failureType)
        .limit(1)
        .executeTakeFirst());
    req.auditTarget = `${o.deviceId} ${o.failureType}=${o.threshold}`;
    return { ...o, knownFailureType };
  });
}
