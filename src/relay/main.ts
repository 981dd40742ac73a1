// Composition root of `fanout relay`: enroll, resume from the job log, poll commands, serve agents.
import { join, resolve } from 'node:path';
import { Gauge, Registry } from 'prom-client';
import { Faults } from '../common/faults.ts';
import { makeFolder, readOrCreateSecret } from '../common/files.ts';
import { createLogger } from '../common/log.ts';
import { createHttpServer, faultRoutes, listen, type ServerOptions, scope } from '../common/server.ts';
import { onShutdown } from '../common/shutdown.ts';
import { type ClientTlsFiles, clientTls, type ServerTlsFiles, serverTls } from '../common/tls.ts';
import { Client } from '../protocol/client.ts';
import { newToken } from '../protocol/crypto.ts';
import type { PackageRef } from '../protocol/types.ts';
import { checkSignedBodies, relayAdminAuth } from './admin-auth.ts';
import { relayAdminRoutes } from './admin-routes.ts';
import { adopter } from './adopt.ts';
import { AgentChannel } from './agent-channel.ts';
import { Depot } from './depot.ts';
import { depotCap } from './depot-cap.ts';
import { Distributor } from './distribution.ts';
import { MasterEnrollment } from './enroll.ts';
import { collectGarbageSooner } from './heap.ts';
import { JobLog } from './joblog.ts';
import { RelayJobs } from './jobs.ts';
import { enroll, heartbeat, pollCommands, refreshPeriodically } from './master-link.ts';
import { masterForPlans } from './plan-master.ts';
import { Redistributor } from './redistributor.ts';
import { writeRelayInfo } from './relay-info.ts';
import { Reporter } from './reporter.ts';
import { agentChannelRoutes } from './routes.ts';
import { lowest, ServingCap } from './serving-cap.ts';
import { Upstream } from './upstream.ts';
import { Verifications } from './verifications.ts';

export { RelayRefused } from './master-link.ts';

export interface RelayOptions {
  /** The master, or several masters on one database: the next is used when one cannot be reached. */
  master: string | string[];
  id: string;
  token: string;
  data: string;
  listen: string;
  upstream?: string;
  allowFaults?: boolean;
  heartbeatMs?: number;
  /** `SHA256:…`: the master key the first enrollment must find. */
  masterKey?: string;
  onRoute?: ServerOptions['onRoute'];
  /** Serve HTTPS (and require client certificates with `clientCa`). */
  tls?: ServerTlsFiles;
  /** How this daemon's clients check the servers it calls (--ca, --client-cert/--client-key). */
  clientTls?: ClientTlsFiles;
  /** The URL others should use to reach this daemon (behind a proxy or a name). */
  advertise?: string;
  /** The depot's cap in bytes (default: the master's depot.maxBytes; none: no cap). */
  depotMaxBytes?: number;
}

export async function buildRelay(opts: RelayOptions) {
  const data = resolve(opts.data);
  await makeFolder(data, 0o700);
  const log = createLogger(`relay ${opts.id}`);
  const adminToken = await readOrCreateSecret(join(data, 'admin.token'), newToken);
  const tls = clientTls(opts.clientTls ?? {});
  const [first, ...fallbacks] = [opts.master].flat();
  const master = new Client({ baseUrl: first, fallbacks, token: opts.token, tls });
  master.opts.onSwitch = (from, to, why) => log.warn({ from, to, why }, 'master unreachable; using the next one');
  const faults = new Faults(!!opts.allowFaults);
  const enrollment = new MasterEnrollment(opts.id, data, master, opts.masterKey, (id) => agents.offered(id), faults);
  if (enrollment.key.notice) log.warn(enrollment.key.notice);
  const registry = new Registry();
  const jobLog = new JobLog(data, faults);
  const depot = new Depot(data, faults, () => enrollment.limits);
  const reporter = new Reporter(master, log);
  const toMaster = new Upstream(master, log);
  const upstream = opts.upstream
    ? new Upstream(new Client({ baseUrl: opts.upstream, token: opts.token, tls }), log)
    : toMaster;
  // A parent relay gets the signed metadata along, so it can fetch, verify and keep what it lacks.
  const contentPath = (pkg: PackageRef) =>
    opts.upstream
      ? `content/${pkg.digest}?${new URLSearchParams({ name: pkg.name, version: pkg.version, size: String(pkg.size), ...(pkg.tree ? { tree: pkg.tree } : {}), signature: pkg.signature })}`
      : `api/v1/blobs/${pkg.digest}`;
  const keys = () => enrollment.key.keys;
  const jobs = new RelayJobs(log, jobLog, reporter);
  const agents = new AgentChannel(opts.id, jobs, reporter);
  const verifications = new Verifications(opts.id, jobs, reporter, agents);
  const capDepot = depotCap(data, () => opts.depotMaxBytes ?? enrollment.depotMaxBytes, jobs, log);
  const distributor = new Distributor({
    relayId: opts.id,
    log,
    jobs,
    depot,
    reporter,
    upstream,
    contentPath,
    keys,
    offered: (deviceId) => agents.offered(deviceId),
    fetched: () => void capDepot(),
    fetchKBps: (cmd) => lowest(cmd.params.rateLimitKBps, enrollment.rateLimitKBps),
  });
  const redistributor = new Redistributor(opts.id, jobs, distributor, depot, masterForPlans(master, enrollment));
  new Gauge({
    name: 'fanout_relay_jobs',
    help: 'Jobs in the job log by state',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      this.reset();
      for (const s of jobs.summaries()) this.inc({ state: s.phase });
    },
  });

  const app = createHttpServer({ logger: log, registry, onRoute: opts.onRoute, https: serverTls(opts.tls ?? {}) });
  const deps = {
    relayId: opts.id,
    jobs,
    agents,
    depot,
    redistributor,
    verifications,
    servingCap: new ServingCap(jobs, () => enrollment.rateLimitKBps, registry),
    device: (id: string) => enrollment.device(id),
    adopt: adopter(master, log),
    masterKey: () => ({
      publicKey: enrollment.key.current,
      rotations: enrollment.key.rotations,
      limits: enrollment.limits,
    }),
    pullThrough: (pkg: PackageRef) => depot.fetch(pkg, upstream, contentPath(pkg), keys()),
  };
  scope(app, 'agent', enrollment.authenticate, (s) => agentChannelRoutes(s, deps));
  scope(
    app,
    'admin',
    relayAdminAuth(adminToken, opts.id, keys, () => enrollment.rereadKey()),
    (s) => {
      checkSignedBodies(s);
      relayAdminRoutes(s, deps);
      faultRoutes(s, faults);
    },
  );

  const stopping = new AbortController();
  let loops: Promise<void>[] = [];
  let refresher: NodeJS.Timeout | undefined;
  return {
    app,
    log,
    jobs,
    /** Enrolls, resumes the job log, listens, and starts polling; resolves with the URL. */
    async start() {
      await enroll(enrollment, log, stopping.signal);
      distributor.resume();
      void capDepot();
      // The master hears where every job stands before the relay serves anyone (kept for later if it is away).
      await reporter.drain();
      const bound = await listen(app, opts.listen);
      const url = opts.advertise ?? bound;
      await writeRelayInfo(data, { id: opts.id, url, pid: process.pid, master: [opts.master].flat() }, opts);
      refresher = refreshPeriodically(enrollment);
      loops = [
        heartbeat(master, url, opts.heartbeatMs ?? 5000, log, stopping.signal),
        pollCommands(toMaster, distributor, enrollment, log, stopping.signal),
      ];
      return url;
    },
    async stop() {
      stopping.abort();
      clearInterval(refresher);
      await distributor.stop();
      jobs.stop();
      await reporter.drain().catch(() => undefined);
      await app.close();
      await Promise.allSettled(loops);
    },
  };
}

export async function runRelay(opts: RelayOptions) {
  collectGarbageSooner();
  const relay = await buildRelay(opts);
  process.stdout.write(`listening on ${await relay.start()}\n`);
  onShutdown(async () => {
    relay.log.info('shutting down');
    await relay.stop();
  });
}
