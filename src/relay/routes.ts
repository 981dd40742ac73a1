// The relay's HTTP face to its endpoints and child relays: the agent channel (assignments,
// reports, content). The admin API is admin-routes.ts.
import { z } from 'zod';
import type { Principal } from '../common/auth.ts';
import { sendBlob } from '../common/content.ts';
import type { App } from '../common/server.ts';
import { FanoutError } from '../protocol/errors.ts';
import { FailureType, type PackageRef, TargetState, Trees } from '../protocol/types.ts';
import type { AgentChannel } from './agent-channel.ts';
import type { Depot } from './depot.ts';
import type { EnrolledDevice } from './enroll.ts';
import { touch } from './eviction.ts';
import type { RelayJobs } from './jobs.ts';
import type { Redistributor } from './redistributor.ts';
import type { ServingCap } from './serving-cap.ts';
import type { Verifications } from './verifications.ts';

export interface RelayHttpDeps {
  relayId: string;
  jobs: RelayJobs;
  agents: AgentChannel;
  depot: Depot;
  redistributor: Redistributor;
  verifications: Verifications;
  /** What enrollment says of a device: its fallback relays, and whose fallback this relay is for it. */
  device: (id: string) => EnrolledDevice | undefined;
  /**
   * A device that arrived here, or whose own relay is another, asked for work: the master moves its
   * open targets here (`arrived`: told at once, else at most every 10 s).
   */
  adopt: (deviceId: string, arrived?: boolean) => void;
  servingCap: ServingCap;
  masterKey: () => { publicKey: string; rotations: unknown[]; limits: unknown };
  pullThrough: (pkg: PackageRef) => Promise<unknown>;
}

const deviceOf = (p: Principal) => {
  if (p.kind !== 'endpoint' && p.kind !== 'relay')
    throw new FanoutError('FANOUT_ERR_AUTH_FORBIDDEN', { needs: 'a device token' });
  return p;
};

/** Endpoints (and child relays) of this relay. */
export function agentChannelRoutes(s: App, d: RelayHttpDeps) {
  s.get('/agent/v1/enroll', async (req) => ({
    deviceId: deviceOf(req.principal).id,
    relayId: d.relayId,
    fallbackRelays: d.device(deviceOf(req.principal).id)?.fallbackRelays ?? [],
    ...d.masterKey(),
  }));
  s.get(
    '/agent/v1/assignments',
    {
      schema: {
        querystring: z.object({
          wait: z.coerce.number().min(0).max(60).default(20),
          // The assignments the agent has taken and not finished (one waiting for its window, say).
          holding: z.string().max(8000).default(''),
          // The verification request it is answering already.
          verifying: z.string().max(200).optional(),
          // Its first request here, at its start or after turning from another relay.
          arrived: z.literal('1').optional(),
        }),
      },
    },
    async (req, reply) => {
      const dev = deviceOf(req.principal);
      if (req.query.arrived || d.device(dev.id)?.fallbackFor) d.adopt(dev.id, !!req.query.arrived);
      d.agents.polls.asked(dev.id);
      const holding = new Set(req.query.holding.split(',').filter(Boolean));
      // Nothing to tell: no assignment the agent lacks, and none of its own withdrawn.
      const nothingNew = (l: { id: string }[]) => l.length === holding.size && l.every((a) => holding.has(a.id));
      const verifyNew = () => {
        const wanted = d.verifications.wantedBy(dev.id);
        return !!wanted && wanted !== req.query.verifying;
      };
      let list = d.agents.assignmentsJson(dev.id);
      if (nothingNew(list) && !verifyNew() && req.query.wait > 0) {
        await d.agents.nextOffer(dev.id, req.query.wait * 1000, req.raw);
        list = d.agents.assignmentsJson(dev.id);
      }
      const verify = d.verifications.wantedBy(dev.id);
      const windows = JSON.stringify(d.device(dev.id)?.windows ?? []);
      // Assignments come serialized (AgentChannel.assignmentsJson); the answer is put together as text.
      return reply
        .type('application/json; charset=utf-8')
        .send(
          `{"assignments":[${list.map((a) => a.json).join(',')}],"windows":${windows}${verify ? `,"verify":${JSON.stringify(verify)}` : ''}}`,
        );
    },
  );
  const Report = z.object({
    jobId: z.string(),
    commandId: z.string(),
    state: TargetState,
    attempt: z.number().optional(),
    failureType: FailureType.optional(),
    error: z.string().max(4000).optional(),
    trees: Trees.optional(),
  });
  s.post('/agent/v1/reports', { schema: { body: Report } }, async (req) => {
    const deviceId = deviceOf(req.principal).id;
    const res = d.agents.report(deviceId, req.body);
    if ('cancelled' in res)
      throw new FanoutError('FANOUT_ERR_TARGET_CANCELLED', { jobId: req.body.jobId, deviceId, why: res.cancelled });
    if (!res.ok) throw new FanoutError('FANOUT_ERR_AUTH_FORBIDDEN', { needs: res.reason });
    await d.agents.synced(); // answered once on disk, one fsync shared by this turn's reports
    return res;
  });
  const Verified = z.object({
    requestId: z.string().max(200).optional(),
    results: z
      .array(
        z.object({
          package: z.string().max(200),
          version: z.string().max(200),
          state: z.enum(['ok', 'drift', 'missing']),
          tree: z.string().max(200).optional(),
          detail: z.string().max(4000).optional(),
        }),
      )
      .max(1000),
  });
  s.post('/agent/v1/verifications', { schema: { body: Verified } }, async (req) => {
    d.verifications.answer(deviceOf(req.principal).id, req.body.requestId, req.body.results);
    return { ok: true };
  });
  const Pull = z.object({
    name: z.string(),
    version: z.string(),
    size: z.coerce.number().int().nonnegative(),
    tree: z
      .string()
      .regex(/^[0-9a-f]{64}$/)
      .optional(),
    signature: z.string(),
  });
  s.get('/content/:digest', { schema: { params: z.object({ digest: z.string() }) } }, async (req, reply) => {
    const { digest } = req.params;
    if (!d.depot.has(digest) && req.principal.kind === 'relay') {
      // A child relay asks for what this relay lacks: fetch it from upstream, verify it, keep it, serve it.
      const q = Pull.safeParse(req.query);
      if (q.success) {
        try {
          await d.pullThrough({ ...q.data, digest });
        } catch (e) {
          throw new FanoutError('FANOUT_ERR_RELAY_UNREACHABLE', {
            relayId: d.relayId,
            why: `could not get ${digest} from its upstream: ${(e as Error).message}`,
          });
        }
      }
    }
    touch(d.depot.path(digest));
    return sendBlob(req, reply, d.depot.path(digest), d.servingCap.served, d.servingCap.paceFor(digest), d.depot.hot);
  });
}
