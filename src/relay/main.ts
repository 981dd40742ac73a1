// Composition root of `fanout relay`: enroll, resume from the job log, poll commands, serve agents.
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Gauge, Registry } from 'prom-client';
import { singleToken } from '../common/auth.ts';
import { Faults } from '../common/faults.ts';
import { readOrCreateSecret } from '../common/files.ts';
import { createLogger, type Logger } from '../common/log.ts';
import { createHttpServer, faultRoutes, listen, onShutdown, type ServerOptions, scope } from '../common/server.ts';
import { Client, HttpError } from '../protocol/client.ts';
import { newToken } from '../protocol/crypto.ts';
import type { DistributionCommand, PackageRef } from '../protocol/types.ts';
import { AgentChannel } from './agent-channel.ts';
import { Depot } from './depot.ts';
import { Distributor } from './distribution.ts';
import { MasterEnrollment } from './enroll.ts';
import { JobLog } from './joblog.ts';
import { RelayJobs } from './jobs.ts';
import { Redistributor } from './redistributor.ts';
import { Reporter } from './reporter.ts';
import { agentChannelRoutes, relayAdminRoutes } from './routes.ts';
import { Upstream } from './upstream.ts';

export interface RelayOptions {
  master: string;
  id: string;
  token: string;
  data: string;
  listen: string;
  upstream?: string;
  allowFaults?: boolean;
  heartbeatMs?: number;
  onRoute?: ServerOptions['onRoute'];
}

export class RelayRefused extends Error {
  override name = 'RelayRefused';
}

export async function buildRelay(opts: RelayOptions) {
  const data = resolve(opts.data);
  await mkdir(data, { recursive: true });
  const log = createLogger(`relay ${opts.id}`);
  const adminToken = await readOrCreateSecret(join(data, 'admin.token'), newToken);
  const master = new Client({ baseUrl: opts.master, token: opts.token });
  const enrollment = new MasterEnrollment(opts.id, data, master);
  const registry = new Registry();
  const faults = new Faults(!!opts.allowFaults);
  const jobLog = new JobLog(data, faults);
  const depot = new Depot(data, faults);
  const reporter = new Reporter(master, log);
  const toMaster = new Upstream(master, log);
  const upstream = opts.upstream
    ? new Upstream(new Client({ baseUrl: opts.upstream, token: opts.token }), log)
    : toMaster;
  // A parent relay gets the signed metadata along, so it can fetch, verify and keep what it lacks.
  const contentPath = (pkg: PackageRef) =>
    opts.upstream
      ? `content/${pkg.digest}?${new URLSearchParams({ name: pkg.name, version: pkg.version, size: String(pkg.size), signature: pkg.signature })}`
      : `api/v1/blobs/${pkg.digest}`;
  const publicKey = () => enrollment.publicKey;
  const jobs = new RelayJobs(opts.id, log, jobLog, reporter);
  const agents = new AgentChannel(opts.id, jobs, reporter);
  const distributor = new Distributor({
    relayId: opts.id,
    log,
    jobs,
    depot,
    reporter,
    upstream,
    contentPath,
    publicKey,
    offered: (deviceId) => agents.offered(deviceId),
  });
  const redistributor = new Redistributor(opts.id, jobs, distributor, depot, async () =>
    (await master.get<{ jobId: string }[]>('api/v1/relay/failed', { timeoutMs: 5000 })).map((f) => f.jobId),
  );
  new Gauge({
    name: 'fanout_relay_jobs',
    help: 'Jobs in the job log by state',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      this.reset();
      for (const st of jobs.all()) this.inc({ state: st.phase });
    },
  });

  const app = createHttpServer({ logger: log, registry, onRoute: opts.onRoute });
  const deps = {
    relayId: opts.id,
    jobs,
    agents,
    depot,
    redistributor,
    publicKey,
    pullThrough: (pkg: PackageRef) => depot.fetch(pkg, upstream, contentPath(pkg), publicKey()),
  };
  scope(app, 'agent', enrollment.authenticate, (s) => agentChannelRoutes(s, deps));
  const admin = singleToken(adminToken, 'relay admin', `relay ${opts.id}'s admin token (DATA/admin.token)`);
  scope(app, 'admin', admin, (s) => {
    relayAdminRoutes(s, deps);
    faultRoutes(s, faults);
  });

  const stopping = new AbortController();
  let loops: Promise<void>[] = [];
  return {
    app,
    log,
    jobs,
    /** Enrolls, resumes the job log, listens, and starts polling; resolves with the URL. */
    async start() {
      await enroll(enrollment, log, stopping.signal);
      distributor.resume();
      const url = await listen(app, opts.listen);
      await writeFile(join(data, 'relay.json'), `${JSON.stringify({ id: opts.id, url, pid: process.pid })}\n`);
      loops = [
        heartbeat(master, url, adminToken, opts.heartbeatMs ?? 5000, log, stopping.signal),
        pollCommands(toMaster, distributor, enrollment, lastSeq(jobs), stopping.signal),
      ];
      return url;
    },
    async stop() {
      stopping.abort();
      await distributor.stop();
      jobs.stop();
      await reporter.drain().catch(() => undefined);
      await app.close();
      await Promise.allSettled(loops);
    },
  };
}

/** The master's key and the tokens of the devices this relay serves; with a key kept, the master may be away. */
async function enroll(enrollment: MasterEnrollment, log: Logger, signal: AbortSignal) {
  for (let attempt = 0; !signal.aborted; attempt++) {
    try {
      await enrollment.refresh();
      return;
    } catch (e) {
      if (e instanceof HttpError && (e.status === 401 || e.status === 403))
        throw new RelayRefused(`the master refused this relay's token: ${e.message}`);
      if (enrollment.publicKey && attempt >= 2) {
        log.warn('master unreachable; starting from the job log with the stored key');
        return;
      }
      log.warn({ err: (e as Error).message }, 'master unreachable; retrying enrollment');
      enrollment.stale();
      await sleep(Math.min(5000, 500 * 2 ** attempt), undefined, { signal }).catch(() => undefined);
    }
  }
}

async function heartbeat(
  master: Client,
  url: string,
  adminToken: string,
  everyMs: number,
  log: Logger,
  signal: AbortSignal,
) {
  while (!signal.aborted) {
    try {
      await master.post('api/v1/relay/heartbeat', { url, adminToken });
    } catch (e) {
      log.warn({ err: (e as Error).message }, 'heartbeat not delivered');
    }
    await sleep(everyMs, undefined, { signal }).catch(() => undefined);
  }
}

/** Long-polls the master for commands: each is on disk (fsync) before it is acknowledged. */
async function pollCommands(
  master: Upstream,
  distributor: Distributor,
  enrollment: MasterEnrollment,
  after: number,
  signal: AbortSignal,
) {
  while (!signal.aborted) {
    try {
      const { commands } = await master.call(
        (c) =>
          c.get<{ commands: DistributionCommand[] }>(`api/v1/relay/commands?after=${after}&wait=20`, {
            timeoutMs: 30_000,
            signal,
          }),
        signal,
      );
      for (const cmd of commands) {
        if (cmd.kind === 'cancel') distributor.cancel(cmd.jobId);
        else distributor.accept(cmd);
        after = Math.max(after, cmd.seq);
      }
      if (commands.length)
        await master.call((c) => c.post('api/v1/relay/acks', { commandIds: commands.map((x) => x.commandId) }));
      // New devices may have been imported with the job: their tokens are wanted soon.
      if (commands.length) await enrollment.refresh().catch(() => undefined);
    } catch {
      if (signal.aborted) break;
      // The breaker spaces the next try; a short pause keeps a refusing master from a tight loop.
      await sleep(500, undefined, { signal }).catch(() => undefined);
    }
  }
}

/** The newest command this relay holds: the poll asks for what came after it. */
const lastSeq = (jobs: RelayJobs) => Math.max(0, ...jobs.all().map((st) => st.original.seq));

export async function runRelay(opts: RelayOptions) {
  const relay = await buildRelay(opts);
  process.stdout.write(`listening on ${await relay.start()}\n`);
  onShutdown(async () => {
    relay.log.info('shutting down');
    await relay.stop();
  });
}
