// The master's admin API (DESIGN §11): inventory, devices, packages, jobs, relays, plans, live events.
import type { Readable } from 'node:stream';
import { z } from 'zod';
import type { Principal } from '../common/auth.ts';
import type { App } from '../common/server.ts';
import { FanoutError } from '../protocol/errors.ts';
import { PageQuery, ViewQuery } from '../protocol/page.ts';
import { Plan } from '../protocol/types.ts';
import type { Db, Scan } from '../store/index.ts';
import type { CancelJob } from './cancel.ts';
import { fleetView } from './fleet.ts';
import { importInventory, issueDeviceToken, readInventory } from './inventory.ts';
import { jobRoutes } from './job-routes.ts';
import type { Jobs } from './jobs.ts';
import type { MasterKeys } from './keys.ts';
import type { PackageStore } from './packages.ts';
import { planSummary } from './plan-rows.ts';
import type { Plans } from './plans.ts';
import type { RelayRegistry } from './relays.ts';
import type { Rollouts } from './rollouts.ts';
import type { DeviceVerification } from './verify.ts';

export interface AdminDeps {
  db: Db;
  /** Reads over the whole fleet, off the event loop (store/scan.ts). */
  scan: Scan;
  jobs: Jobs;
  packages: PackageStore;
  relays: RelayRegistry;
  plans: Plans;
  keys: MasterKeys;
  verify: DeviceVerification;
  rollouts: Rollouts;
  cancel: CancelJob;
  /** Wakes the long-polls of these relays, `*` for every relay (on every master). */
  notify: (relayIds: string) => Promise<void>;
}

const Id = z.object({ id: z.string().min(1).max(200) });
/** A person decides under their own name; the shared admin token under the name it gives. */
const decider = (p: Principal, by: string) => (p.kind === 'user' ? p.name : by);
const Decision = z.object({ by: z.string().min(1).max(200).default('dashboard') }).prefault({});

export function adminRoutes(s: App, d: AdminDeps) {
  s.addContentTypeParser(
    ['application/gzip', 'application/octet-stream', 'application/x-gzip'],
    (_req, payload, done) => done(null, payload),
  );
  s.addContentTypeParser(['application/yaml', 'text/yaml'], { parseAs: 'string' }, (_req, body, done) =>
    done(null, body),
  );

  s.post('/api/v1/inventory', { bodyLimit: 64 * 1024 * 1024 }, async (req) => {
    const text = typeof req.body === 'string' ? req.body : JSON.stringify(req.body);
    const result = await importInventory(d.db, await readInventory(text));
    req.auditTarget = `${result.devices.length} device(s), ${result.devices.filter((x) => x.token).length} new`;
    d.jobs.events.emit('changed');
    // Windows and tokens reach the relays now, not at their next refresh.
    await d.notify('*');
    // Devices can pin this from the start (`--master-key`).
    return { ...result, masterKey: d.keys.fingerprint };
  });
  s.get('/api/v1/inventory', async () => {
    const [centers, locations, devices] = await Promise.all([
      d.db.selectFrom('centers').selectAll().execute(),
      d.db.selectFrom('locations').selectAll().execute(),
      d.db
        .selectFrom('devices')
        .select(['id', 'kind', 'location', 'relay', 'upstream', 'labels', 'hostname'])
        .orderBy('id')
        .execute(),
    ]);
    return {
      centers: centers.map((c) => ({ ...c, email: JSON.parse(c.email) })),
      locations,
      devices: devices.map((x) => ({ ...x, labels: JSON.parse(x.labels) })),
    };
  });
  s.post(
    '/api/v1/devices/verify',
    {
      schema: {
        body: z.object({
          devices: z.array(z.string().max(200)).max(100_000).optional(),
          labels: z.record(z.string().max(200), z.string().max(200)).optional(),
        }),
      },
    },
    async (req) => d.verify.request(req.body),
  );
  s.get(
    '/api/v1/fleet',
    {
      schema: {
        querystring: PageQuery.extend({
          search: z.string().max(200).optional(),
          package: z.string().max(200).optional(),
          location: z.string().max(200).optional(),
        }),
      },
    },
    async (req) => fleetView(d.db, d.scan, req.query),
  );
  s.get('/api/v1/verifications/:id', { schema: { params: Id } }, async (req) => ({
    requestId: req.params.id,
    answers: await d.verify.answers(req.params.id),
  }));
  s.post('/api/v1/devices/:id/token', { schema: { params: Id } }, async (req) => {
    const issued = await issueDeviceToken(d.db, req.params.id);
    await d.notify('*'); // the old token is refused at the relay at once
    return issued;
  });

  s.post('/api/v1/packages', { bodyLimit: 2 * 1024 ** 3 }, async (req) => {
    if (typeof (req.body as Readable | undefined)?.pipe !== 'function')
      throw new FanoutError('FANOUT_ERR_INPUT_MEDIA_TYPE', {
        mediaType: String(req.headers['content-type'] ?? 'nothing'),
        expected: 'the package file as application/gzip',
      });
    const pushed = await d.packages.push(req.body as Readable);
    req.auditTarget = `${pushed.name}@${pushed.version}`;
    return pushed;
  });
  s.get('/api/v1/packages', { schema: { querystring: PageQuery } }, async (req) => d.packages.list(req.query));

  jobRoutes(s, d);

  s.get('/api/v1/relays', async () => d.relays.list());
  s.get('/api/v1/keys', async () => ({
    fingerprint: d.keys.fingerprint,
    publicKey: d.keys.publicPem,
    rotations: await d.keys.rotations(),
  }));
  s.post('/api/v1/keys/rotate', async (req) => {
    const rotated = await d.keys.rotate();
    req.auditTarget = rotated.fingerprint;
    return rotated;
  });

  s.get(
    '/api/v1/plans',
    {
      schema: {
        // summary: each list cut to its first names, with counts (a plan may name 10,000 targets)
        querystring: PageQuery.extend({ state: Plan.shape.state.optional(), ...ViewQuery.shape }),
      },
    },
    async (req) => {
      const plans = await d.plans.list(req.query, req.query);
      return req.query.view === 'summary' ? plans.map(planSummary) : plans;
    },
  );
  s.get('/api/v1/plans/:id', { schema: { params: Id } }, async (req) => d.plans.get(req.params.id));
  s.post(
    '/api/v1/relays/:id/plans',
    { schema: { params: Id, body: z.object({ jobId: z.string().optional() }).prefault({}) } },
    async (req) => d.plans.request(req.params.id, req.body.jobId),
  );
  s.post('/api/v1/plans/:id/approve', { schema: { params: Id, body: Decision } }, async (req) => ({
    plan: await d.plans.decide(req.params.id, 'approve', decider(req.principal, req.body.by)),
  }));
  s.post('/api/v1/plans/:id/reject', { schema: { params: Id, body: Decision } }, async (req) => ({
    plan: await d.plans.decide(req.params.id, 'reject', decider(req.principal, req.body.by)),
  }));
}
