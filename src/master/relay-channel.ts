// The relay channel of the master (DESIGN §5): enroll, long-poll commands, acknowledge, report,
// heartbeat; and content by digest, which relays (and the admin) may fetch.

import { Counter, type Registry } from 'prom-client';
import { z } from 'zod';
import type { Principal } from '../common/auth.ts';
import { sendBlob } from '../common/content.ts';
import type { App } from '../common/server.ts';
import type { ArchiveLimits } from '../protocol/archive.ts';
import { FanoutError } from '../protocol/errors.ts';
import { DistributionCommand, RelayReport } from '../protocol/types.ts';
import type { Db } from '../store/index.ts';
import type { Commands } from './commands.ts';
import type { Enrollments } from './enrollment.ts';
import { adopt } from './failover.ts';
import type { Jobs } from './jobs.ts';
import type { MasterKeys } from './keys.ts';
import type { PackageStore } from './packages.ts';
import { fleetMovedOn } from './plan-rows.ts';
import type { RelayRegistry } from './relays.ts';
import { renewedAuthority } from './resign.ts';
import { endpointsSeen } from './seen.ts';
import type { DeviceVerification } from './verify.ts';

export interface RelayChannelDeps {
  db: Db;
  jobs: Jobs;
  commands: Commands;
  packages: PackageStore;
  relays: RelayRegistry;
  keys: MasterKeys;
  limits: ArchiveLimits;
  /** The fleet's depot cap, given to relays at enrollment (a relay's --depot-max-bytes wins). */
  depotMaxBytes?: number;
  registry: Registry;
  verify: DeviceVerification;
  /** What each relay is told of its devices, held per inventory generation. */
  enrollments: Enrollments;
  /** Wakes the long-polls of these relays (on every master). */
  notify: (relayIds: string) => Promise<void>;
}

const relayId = (p: Principal) => {
  if (p.kind !== 'relay') throw new FanoutError('FANOUT_ERR_AUTH_FORBIDDEN', { needs: 'a relay token' });
  return p.id;
};

export function relayChannelRoutes(s: App, d: RelayChannelDeps) {
  s.get('/api/v1/relay/enroll', async (req) => {
    const id = relayId(req.principal);
    const { inventory, addresses, devices } = await d.enrollments.of(id);
    return {
      relayId: id,
      inventory,
      addresses,
      publicKey: d.keys.publicPem,
      rotations: await d.keys.rotations(),
      limits: d.limits,
      ...(d.depotMaxBytes ? { depot: { maxBytes: d.depotMaxBytes } } : {}),
      devices,
      rateLimitKBps:
        (await d.db.selectFrom('devices').select('rate_limit_kbps').where('id', '=', id).executeTakeFirst())
          ?.rate_limit_kbps ?? undefined,
    };
  });
  s.get(
    '/api/v1/relay/commands',
    {
      schema: {
        // Delivery is by acknowledgement: an `after` an older relay still sends is ignored.
        querystring: z.object({
          wait: z.coerce.number().min(0).max(60).default(25),
          // The inventory generation the relay's devices come from (its enrollment): an older one is answered at once.
          inventory: z.coerce.number().int().min(0).optional(),
        }),
      },
    },
    async (req) => d.commands.commandsFor(relayId(req.principal), req.query.wait * 1000, req.query.inventory),
  );
  s.post(
    '/api/v1/relay/acks',
    { schema: { body: z.object({ commandIds: z.array(z.string()).max(10_000) }) } },
    async (req) => {
      await d.commands.ack(relayId(req.principal), req.body.commandIds);
      return { ok: true };
    },
  );
  // An endpoint turned to this relay as its fallback: its open targets move here.
  s.post('/api/v1/relay/adopt', { schema: { body: z.object({ deviceId: z.string().max(200) }) } }, async (req) => {
    const r = await adopt(d.db, d.keys.privatePem, relayId(req.principal), req.body.deviceId);
    if (r.jobs.length) await d.notify(relayId(req.principal));
    return r;
  });
  // A relay's plans carry whole distribution lists (three of them): a fleet's worth is megabytes.
  s.post('/api/v1/relay/reports', { bodyLimit: 64 * 1024 * 1024, schema: { body: RelayReport } }, async (req) => {
    await d.jobs.applyReport(relayId(req.principal), req.body);
    await d.verify.save(relayId(req.principal), req.body.verifications);
    await endpointsSeen(d.db, d.enrollments, relayId(req.principal), req.body.seen, req.body.sentAt);
    return { ok: true };
  });
  // A redistribution whose original command has expired: the master signs it again, unchanged but
  // for its times, and only for the relay it was issued to.
  s.post(
    '/api/v1/relay/commands/:id/renew',
    { schema: { params: z.object({ id: z.string().min(1).max(200) }) } },
    async (req) => {
      const id = relayId(req.principal);
      const row = await d.db
        .selectFrom('commands')
        .select(['body', 'job_id'])
        .where('command_id', '=', req.params.id)
        .where('relay_id', '=', id)
        .executeTakeFirst();
      if (!row)
        throw new FanoutError('FANOUT_ERR_JOB_UNKNOWN', {
          jobId: req.params.id,
          where: ` as a command of relay ${id}`,
        });
      // A job the master cancelled stays cancelled: its command is never signed for longer.
      const cancel = await d.db
        .selectFrom('commands')
        .select('issued_at')
        .where('job_id', '=', row.job_id)
        .where('kind', '=', 'cancel')
        .executeTakeFirst();
      if (cancel)
        throw new FanoutError('FANOUT_ERR_COMMAND_REFUSED', {
          commandId: req.params.id,
          why: `job ${row.job_id} was cancelled at ${cancel.issued_at}; a cancelled job is not signed again: create a new job`,
        });
      const renewed = renewedAuthority(d.keys, DistributionCommand.parse({ ...JSON.parse(row.body), seq: 0 }));
      if (!renewed)
        throw new FanoutError('FANOUT_ERR_COMMAND_REFUSED', {
          commandId: req.params.id,
          why: 'the master holds it otherwise than it signed it (changed in the database?); it signs nothing of it again: create a new job',
        });
      return renewed;
    },
  );
  // The redistribution tool on a relay asks which of its jobs the master holds as failed.
  s.get('/api/v1/relay/failed', async (req) => {
    const rows = await d.db
      .selectFrom('failed_distributions')
      .select(['job_id', 'failure_type', 'state', 'ticket_id'])
      .where('relay_id', '=', relayId(req.principal))
      .where('state', '!=', 'resolved')
      .execute();
    return rows.map((r) => ({ jobId: r.job_id, failureType: r.failure_type, state: r.state, ticketId: r.ticket_id }));
  });
  // Before it plans, a relay asks which of a failed job's targets run a newer version by now: the
  // master's record sees installs through other relays, which the relay's job log does not.
  s.get(
    '/api/v1/relay/jobs/:jobId/moved-on',
    { schema: { params: z.object({ jobId: z.string().min(1).max(200) }) } },
    async (req) => {
      const { movedOn } = await fleetMovedOn(d.db, relayId(req.principal), req.params.jobId);
      return [...movedOn].map(([deviceId, why]) => ({ deviceId, why }));
    },
  );
  s.post(
    '/api/v1/relay/heartbeat',
    {
      schema: { body: z.object({ url: z.string().max(2000).optional(), adminToken: z.string().max(200).optional() }) },
    },
    async (req) => {
      await d.relays.heartbeat(relayId(req.principal), req.body.url);
      return { ok: true };
    },
  );
}

/** Content by digest: relays fetch what their jobs need; content is public within the fleet. */
export function blobRoutes(s: App, d: RelayChannelDeps) {
  const blobBytes = new Counter({
    name: 'fanout_blob_bytes_served_total',
    help: 'Bytes of package content served to relays',
    labelNames: ['digest'],
    registers: [d.registry],
  });
  s.get('/api/v1/blobs/:digest', { schema: { params: z.object({ digest: z.string() }) } }, async (req, reply) => {
    const { digest } = req.params;
    return sendBlob(req, reply, await d.packages.blob(digest), (n) => blobBytes.inc({ digest }, n));
  });
}
