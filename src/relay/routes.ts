// The relay's HTTP face: assignments and content for agents, the admin API for the redistribution tool.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { sendBlob } from '../common/content.ts';
import { bearer, requireToken } from '../common/server.ts';
import { sha256Hex } from '../protocol/crypto.ts';
import { FanoutError } from '../protocol/errors.ts';
import { type PackageRef, Plan, TargetState } from '../protocol/types.ts';
import type { Depot } from './depot.ts';
import type { DistributionManager } from './manager.ts';
import type { Redistributor } from './redistributor.ts';

export interface RelayHttpDeps {
  relayId: string;
  adminToken: string;
  devices: () => Map<string, { id: string; kind: string }>;
  refreshDevices: () => Promise<void>;
  manager: DistributionManager;
  depot: Depot;
  redistributor: Redistributor;
  publicKey: () => string;
  pullThrough: (pkg: PackageRef) => Promise<unknown>;
}

export function jobSummary(st: NonNullable<ReturnType<DistributionManager['get']>>) {
  return {
    jobId: st.jobId,
    state: st.phase,
    failure: st.failure ?? null,
    commandId: st.current.commandId,
    kind: st.current.kind,
    packages: st.current.packages.map((p) => ({ name: p.name, version: p.version, digest: p.digest, size: p.size })),
    distributionList: st.current.distributionList,
    targets: st.original.distributionList.map((d) => ({ deviceId: d, ...st.targets.get(d)! })),
    redistributions: st.redistributions,
  };
}

export function relayRoutes(app: FastifyInstance, d: RelayHttpDeps) {
  const device = async (req: FastifyRequest) => {
    const token = bearer(req);
    const hash = sha256Hex(token);
    let dev = d.devices().get(hash);
    if (!dev) {
      await d.refreshDevices();
      dev = d.devices().get(hash);
    }
    if (!dev) throw new FanoutError('FANOUT_ERR_AUTH_INVALID', `token not recognized by relay ${d.relayId}`);
    return dev;
  };
  const admin = requireToken(d.adminToken, `relay ${d.relayId}'s admin token (DATA/admin.token)`);

  app.get('/agent/v1/enroll', async (req) => {
    const dev = await device(req);
    return { deviceId: dev.id, relayId: d.relayId, publicKey: d.publicKey() };
  });
  app.get('/agent/v1/assignments', async (req) => {
    const dev = await device(req);
    const { wait } = z.object({ wait: z.coerce.number().min(0).max(60).default(20) }).parse(req.query);
    let list = d.manager.assignmentsFor(dev.id);
    if (!list.length && wait > 0) {
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          d.manager.events.off(`assign:${dev.id}`, done);
          req.raw.off('close', done);
          resolve();
        };
        const timer = setTimeout(done, wait * 1000);
        d.manager.events.on(`assign:${dev.id}`, done);
        req.raw.on('close', done);
      });
      list = d.manager.assignmentsFor(dev.id);
    }
    return { assignments: list };
  });
  app.post('/agent/v1/reports', async (req) => {
    const dev = await device(req);
    const r = z
      .object({
        jobId: z.string(),
        commandId: z.string(),
        state: TargetState,
        attempt: z.number().optional(),
        failureType: z.string().optional(),
        error: z.string().max(4000).optional(),
      })
      .parse(req.body);
    const res = d.manager.agentReport(dev.id, r);
    if (!res.ok) throw new FanoutError('FANOUT_ERR_AUTH_FORBIDDEN', res.reason!);
    return res;
  });
  app.get('/content/:digest', async (req, reply) => {
    const who = bearer(req) === d.adminToken ? { kind: 'admin' } : await device(req);
    const { digest } = req.params as { digest: string };
    if (!d.depot.has(digest) && who.kind === 'relay') {
      // A child relay asks for what this relay lacks: fetch it from upstream, verify it, keep it, serve it.
      const q = z
        .object({
          name: z.string(),
          version: z.string(),
          size: z.coerce.number().int().nonnegative(),
          signature: z.string(),
        })
        .safeParse(req.query);
      if (q.success) {
        try {
          await d.pullThrough({ ...q.data, digest });
        } catch (e) {
          throw new FanoutError(
            'FANOUT_ERR_RELAY_UNREACHABLE',
            `relay ${d.relayId} could not get ${digest} from its upstream: ${(e as Error).message}`,
          );
        }
      }
    }
    return sendBlob(req, reply, d.depot.path(digest));
  });

  app.get('/admin/v1/jobs', async (req) => (admin(req), d.manager.all().map(jobSummary)));
  app.get('/admin/v1/jobs/:id', async (req) => {
    admin(req);
    const st = d.manager.get((req.params as { id: string }).id);
    if (!st)
      throw new FanoutError(
        'FANOUT_ERR_JOB_UNKNOWN',
        `job "${(req.params as { id: string }).id}" is not in this relay's job log`,
      );
    return jobSummary(st);
  });
  app.get('/admin/v1/redistribute/plans', async (req) => (admin(req), { plans: d.redistributor.list() }));
  app.post('/admin/v1/redistribute/plans', async (req) => {
    admin(req);
    const { jobId } = z.object({ jobId: z.string().optional() }).parse(req.body ?? {});
    return d.redistributor.plan(jobId);
  });
  const by = (req: FastifyRequest) => z.object({ by: z.string().min(1).default('operator') }).parse(req.body ?? {}).by;
  app.post('/admin/v1/redistribute/plans/:id/approve', async (req) => {
    admin(req);
    return { plan: d.redistributor.approve((req.params as { id: string }).id, by(req)) };
  });
  app.post('/admin/v1/redistribute/plans/:id/reject', async (req) => {
    admin(req);
    return { plan: d.redistributor.reject((req.params as { id: string }).id, by(req)) };
  });
  // The tool ran on this host with --data and built the plan from the job log itself.
  app.post('/admin/v1/redistribute/submit', async (req) => {
    admin(req);
    const body = z.object({ plan: Plan, approvedBy: z.string().min(1) }).parse(req.body);
    return { plan: d.redistributor.submit(body.plan, body.approvedBy) };
  });
}
