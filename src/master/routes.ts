// The master's HTTP API (DESIGN §5, §11): inventory, packages, jobs, and the relay channel.
import type { FastifyInstance } from 'fastify';
import { Counter, type Registry } from 'prom-client';
import { z } from 'zod';
import { sendBlob } from '../common/content.ts';
import { FanoutError } from '../protocol/errors.ts';
import { RelayReport } from '../protocol/types.ts';
import type { Db } from '../store/index.ts';
import type { Auth } from './auth.ts';
import { importInventory, issueDeviceToken, parseInventory } from './inventory.ts';
import type { Jobs } from './jobs.ts';
import type { PackageStore } from './packages.ts';
import type { RelayRegistry } from './relays.ts';

export interface MasterDeps {
  db: Db;
  auth: Auth;
  jobs: Jobs;
  packages: PackageStore;
  relays: RelayRegistry;
  publicKey: string;
  registry: Registry;
}

export function masterRoutes(app: FastifyInstance, d: MasterDeps) {
  const blobBytes = new Counter({
    name: 'fanout_blob_bytes_served_total',
    help: 'Bytes of package content served to relays',
    labelNames: ['digest'],
    registers: [d.registry],
  });
  app.addContentTypeParser(
    ['application/gzip', 'application/octet-stream', 'application/x-gzip'],
    (_req, payload, done) => done(null, payload),
  );
  app.addContentTypeParser(['application/yaml', 'text/yaml'], { parseAs: 'string' }, (_req, body, done) =>
    done(null, body),
  );

  app.post('/api/v1/inventory', async (req) => {
    await d.auth.admin(req);
    const text = typeof req.body === 'string' ? req.body : JSON.stringify(req.body);
    const result = await importInventory(d.db, parseInventory(text));
    d.jobs.events.emit('changed');
    return result;
  });
  app.get('/api/v1/inventory', async (req) => {
    await d.auth.admin(req);
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
  app.post('/api/v1/devices/:id/token', async (req) => {
    await d.auth.admin(req);
    return issueDeviceToken(d.db, (req.params as { id: string }).id);
  });

  app.post('/api/v1/packages', { bodyLimit: 2 * 1024 ** 3 }, async (req) => {
    await d.auth.admin(req);
    if (typeof (req.body as NodeJS.ReadableStream)?.pipe !== 'function')
      throw new FanoutError('FANOUT_ERR_PACKAGE_INVALID', 'send the package file as application/gzip');
    return d.packages.push(req.body as import('node:stream').Readable);
  });
  app.get('/api/v1/packages', async (req) => {
    await d.auth.admin(req);
    return d.packages.list();
  });
  // Relays fetch content by digest; any relay may, since content is public within the fleet.
  app.get('/api/v1/blobs/:digest', async (req, reply) => {
    const who = await d.auth.identify(req);
    if (who.kind === 'endpoint')
      throw new FanoutError('FANOUT_ERR_AUTH_FORBIDDEN', 'endpoints fetch content from their relay');
    const { digest } = req.params as { digest: string };
    return sendBlob(req, reply, d.packages.blobPath(digest), (n) => blobBytes.inc({ digest }, n));
  });

  const JobBody = z.object({
    packages: z.array(z.string()).min(1),
    targets: z.array(z.string()).optional(),
    labels: z.record(z.string(), z.string()).optional(),
    params: z.record(z.string(), z.unknown()).optional(),
  });
  app.post('/api/v1/jobs', async (req) => {
    await d.auth.admin(req);
    return d.jobs.create(JobBody.parse(req.body));
  });
  app.get('/api/v1/jobs', async (req) => {
    await d.auth.admin(req);
    return d.jobs.list();
  });
  app.get('/api/v1/jobs/:id', async (req) => {
    await d.auth.admin(req);
    return d.jobs.view((req.params as { id: string }).id);
  });

  // The relay channel: enroll, long-poll commands, acknowledge, report, heartbeat.
  app.get('/api/v1/relay/enroll', async (req) => {
    const relayId = await d.auth.relay(req);
    const devices = await d.db
      .selectFrom('devices')
      .select(['id', 'kind', 'token_hash'])
      .where((eb) => eb.or([eb('relay', '=', relayId), eb('upstream', '=', relayId)]))
      .execute();
    return {
      relayId,
      publicKey: d.publicKey,
      devices: devices.map((x) => ({ id: x.id, kind: x.kind, tokenHash: x.token_hash })),
    };
  });
  app.get('/api/v1/relay/commands', async (req) => {
    const relayId = await d.auth.relay(req);
    const q = z
      .object({ after: z.coerce.number().int().default(0), wait: z.coerce.number().min(0).max(60).default(25) })
      .parse(req.query);
    return { commands: await d.jobs.commandsFor(relayId, q.after, q.wait * 1000) };
  });
  app.post('/api/v1/relay/acks', async (req) => {
    const relayId = await d.auth.relay(req);
    await d.jobs.ack(relayId, z.object({ commandIds: z.array(z.string()) }).parse(req.body).commandIds);
    return { ok: true };
  });
  app.post('/api/v1/relay/reports', async (req) => {
    const relayId = await d.auth.relay(req);
    await d.jobs.applyReport(relayId, RelayReport.parse(req.body));
    return { ok: true };
  });
  // The redistribution tool on a relay asks which of its jobs the master holds as failed.
  app.get('/api/v1/relay/failed', async (req) => {
    const relayId = await d.auth.relay(req);
    const rows = await d.db
      .selectFrom('failed_distributions')
      .select(['job_id', 'failure_type', 'state', 'ticket_id'])
      .where('relay_id', '=', relayId)
      .where('state', '!=', 'resolved')
      .execute();
    return rows.map((r) => ({ jobId: r.job_id, failureType: r.failure_type, state: r.state, ticketId: r.ticket_id }));
  });
  app.post('/api/v1/relay/heartbeat', async (req) => {
    const relayId = await d.auth.relay(req);
    const body = z.object({ url: z.string().optional(), adminToken: z.string().optional() }).parse(req.body);
    await d.relays.heartbeat(relayId, body.url, body.adminToken);
    return { ok: true };
  });
}
