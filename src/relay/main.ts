// Composition root of `fanout relay`: enroll, resume from the job log, poll commands, serve agents.
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Gauge, Registry } from 'prom-client';
import { Faults } from '../common/faults.ts';
import { readOrCreateSecret } from '../common/files.ts';
import { createLogger } from '../common/log.ts';
import { createHttpServer, listen, onShutdown, requireToken } from '../common/server.ts';
import { Client } from '../protocol/client.ts';
import { newToken } from '../protocol/crypto.ts';
import type { PackageRef } from '../protocol/types.ts';
import { Depot } from './depot.ts';
import { JobLog } from './joblog.ts';
import { DistributionManager } from './manager.ts';
import { Redistributor } from './redistributor.ts';
import { Reporter } from './reporter.ts';
import { relayRoutes } from './routes.ts';

export interface RelayOptions {
  master: string;
  id: string;
  token: string;
  data: string;
  listen: string;
  upstream?: string;
  allowFaults?: boolean;
  heartbeatMs?: number;
}

export async function runRelay(opts: RelayOptions) {
  const data = resolve(opts.data);
  await mkdir(data, { recursive: true });
  const log = createLogger(`relay ${opts.id}`);
  const adminToken = await readOrCreateSecret(join(data, 'admin.token'), newToken);

  const master = new Client({ baseUrl: opts.master, token: opts.token });
  const stopping = new AbortController();

  // Enroll: the master's key and the tokens of the devices this relay serves.
  let publicKey = existsSync(join(data, 'master.pub')) ? readFileSync(join(data, 'master.pub'), 'utf8') : '';
  let devices = new Map<string, { id: string; kind: string }>();
  let lastRefresh = 0;
  const refreshDevices = async () => {
    if (Date.now() - lastRefresh < 1000) return;
    lastRefresh = Date.now();
    const r = await master.get<{
      publicKey: string;
      devices: { id: string; kind: string; tokenHash: string | null }[];
    }>('api/v1/relay/enroll');
    devices = new Map(r.devices.filter((x) => x.tokenHash).map((x) => [x.tokenHash!, { id: x.id, kind: x.kind }]));
    if (r.publicKey !== publicKey) {
      publicKey = r.publicKey;
      await writeFile(join(data, 'master.pub'), publicKey);
    }
  };
  for (let attempt = 0; ; attempt++) {
    try {
      await refreshDevices();
      break;
    } catch (e) {
      const err = e as { status?: number; message: string };
      if (err.status === 401 || err.status === 403) {
        log.fatal({ err: err.message }, "the master refused this relay's token");
        process.stderr.write(`fanout relay: the master refused the token for ${opts.id}: ${err.message}\n`);
        process.exit(2);
      }
      if (publicKey && attempt >= 2) {
        log.warn('master unreachable; starting from the job log with the stored key');
        break;
      }
      log.warn({ err: err.message }, 'master unreachable; retrying enrollment');
      lastRefresh = 0;
      await sleep(Math.min(5000, 500 * 2 ** attempt));
    }
  }

  const registry = new Registry();
  const faults = new Faults(!!opts.allowFaults);
  const jobLog = new JobLog(data, faults);
  const depot = new Depot(data, faults);
  const reporter = new Reporter(master, log);
  const upstream = opts.upstream ? new Client({ baseUrl: opts.upstream, token: opts.token }) : master;
  // A parent relay gets the signed metadata along, so it can fetch, verify and keep what it lacks.
  const contentPath = (pkg: PackageRef) =>
    opts.upstream
      ? `content/${pkg.digest}?${new URLSearchParams({ name: pkg.name, version: pkg.version, size: String(pkg.size), signature: pkg.signature })}`
      : `api/v1/blobs/${pkg.digest}`;
  const manager = new DistributionManager({
    relayId: opts.id,
    log,
    jobLog,
    depot,
    reporter,
    upstream,
    contentPath,
    publicKey: () => publicKey,
  });
  const redistributor = new Redistributor(opts.id, manager, depot, async () =>
    (await master.get<{ jobId: string }[]>('api/v1/relay/failed', { timeoutMs: 5000 })).map((f) => f.jobId),
  );
  new Gauge({
    name: 'fanout_relay_jobs',
    help: 'Jobs in the job log by state',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      this.reset();
      for (const st of manager.all()) this.inc({ state: st.phase });
    },
  });
  manager.resumeAll();

  const app = createHttpServer({
    logger: log,
    registry,
    faults,
    adminAuth: requireToken(adminToken, `relay ${opts.id}'s admin token (DATA/admin.token)`),
  });
  relayRoutes(app, {
    relayId: opts.id,
    adminToken,
    devices: () => devices,
    refreshDevices: () => refreshDevices().catch(() => undefined),
    manager,
    depot,
    redistributor,
    publicKey: () => publicKey,
    pullThrough: (pkg) => depot.fetch(pkg, upstream, contentPath(pkg), publicKey),
  });
  const url = await listen(app, opts.listen);
  await writeFile(join(data, 'relay.json'), JSON.stringify({ id: opts.id, url, pid: process.pid }) + '\n');

  const heartbeat = async () => {
    while (!stopping.signal.aborted) {
      try {
        await master.post('api/v1/relay/heartbeat', { url, adminToken });
      } catch (e) {
        log.warn({ err: (e as Error).message }, 'heartbeat not delivered');
      }
      await sleep(opts.heartbeatMs ?? 5000, undefined, { signal: stopping.signal }).catch(() => undefined);
    }
  };
  const pollCommands = async () => {
    let after = manager.lastSeq();
    let failures = 0;
    while (!stopping.signal.aborted) {
      try {
        const { commands } = await master.get<{ commands: import('../protocol/types.ts').DistributionCommand[] }>(
          `api/v1/relay/commands?after=${after}&wait=20`,
          { timeoutMs: 30_000, signal: stopping.signal },
        );
        for (const cmd of commands) {
          if (cmd.kind === 'cancel') manager.cancel(cmd.jobId);
          else manager.accept(cmd); // on disk (fsync) before the ack below
          after = Math.max(after, cmd.seq);
        }
        if (commands.length) await master.post('api/v1/relay/acks', { commandIds: commands.map((c) => c.commandId) });
        if (failures) log.info('upstream online');
        failures = 0;
      } catch (e) {
        if (stopping.signal.aborted) break;
        if (failures++ === 0) log.warn({ err: (e as Error).message }, 'upstream offline; will keep trying');
        await sleep(Math.min(10_000, 500 * 2 ** Math.min(failures, 5)), undefined, { signal: stopping.signal }).catch(
          () => undefined,
        );
      }
    }
  };
  const loops = [heartbeat(), pollCommands()];

  onShutdown(async () => {
    log.info('shutting down');
    stopping.abort();
    await manager.stop();
    await reporter.drain().catch(() => undefined);
    await app.close();
    await Promise.allSettled(loops);
  });
}
