// Composition root of `fanout master`: store, services, HTTP server.

import { chmod } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Registry } from 'prom-client';
import { AlertCenter } from '../alerts/center.ts';
import { alertIntakeRoutes, alertmanagerRoutes } from '../alerts/intake-routes.ts';
import { ticketLinkRoutes } from '../alerts/link-routes.ts';
import { TicketLinks } from '../alerts/links.ts';
import { Mailer } from '../alerts/mailer.ts';
import { Outages } from '../alerts/outages.ts';
import { CLAIM_MS } from '../alerts/outbox.ts';
import { alertAdminRoutes } from '../alerts/routes.ts';
import { Tickets } from '../alerts/tickets.ts';
import { Webhooks } from '../alerts/webhooks.ts';
import { Faults } from '../common/faults.ts';
import { makeFolder, readOrCreateSecret } from '../common/files.ts';
import { createLogger } from '../common/log.ts';
import { createHttpServer, faultRoutes, listen, scope } from '../common/server.ts';
import { onShutdown } from '../common/shutdown.ts';
import { clientTls, serverTls } from '../common/tls.ts';
import { newToken } from '../protocol/crypto.ts';
import { openStore } from '../store/index.ts';
import { Auth } from './auth.ts';
import { blobStoreFor } from './blobs.ts';
import { jobCanceller } from './cancel.ts';
import { Commands } from './commands.ts';
import { loadConfig } from './config.ts';
import { dashboardRoutes } from './dashboard.ts';
import { Enrollments } from './enrollment.ts';
import type { Change } from './job-view.ts';
import { Jobs } from './jobs.ts';
import { MasterKeys } from './keys.ts';
import { masterMetrics } from './metrics.ts';
import { apiDescriptionRoute, describeApi } from './openapi.ts';
import type { MasterOptions } from './options.ts';
import { PackageStore } from './packages.ts';
import { People } from './people.ts';
import { peopleRoutes } from './people-routes.ts';
import { Plans } from './plans.ts';
import { blobRoutes, relayChannelRoutes } from './relay-channel.ts';
import { type RaiseAlert, RelayRegistry } from './relays.ts';
import { rolloutRoutes } from './rollout-routes.ts';
import { Rollouts } from './rollouts.ts';
import { adminRoutes } from './routes.ts';
import { shareEvents } from './shared-events.ts';
import { sharedSecret } from './shared-secrets.ts';
import { DeviceVerification } from './verify.ts';

export type { MasterOptions } from './options.ts';

export async function buildMaster(opts: MasterOptions) {
  const data = resolve(opts.data);
  // Tokens, keys and the database live here: only the master's own user may read it.
  await makeFolder(data, 0o700);
  await chmod(data, 0o700);
  const cfg = loadConfig(data, opts.config);
  const log = createLogger('master');
  const adminToken = await readOrCreateSecret(join(data, 'admin.token'), newToken);
  const store = await openStore(opts.db ?? process.env.FANOUT_DB ?? join(data, 'master.db'));
  for (const f of ['master.db', 'master.db-wal', 'master.db-shm'])
    await chmod(join(data, f), 0o600).catch(() => undefined);
  const keys = await MasterKeys.load(store.db, data, opts.signingKey);
  for (const n of keys.notices) log.warn(n);
  const { db, scan } = store;
  const registry = new Registry();
  const faults = new Faults(!!opts.allowFaults);
  masterMetrics(registry, store);
  const people = new People(db);
  const auth = new Auth(db, adminToken);
  const packages = new PackageStore(db, blobStoreFor(opts.blobs, data, store), keys, cfg.limits);
  // After a commit: a notice that fails must not fail a request whose work is done (a job, new
  // tokens). Relays find it at their next poll or refresh, within 20 s.
  const wakeRelays = (ids: string) =>
    store
      .notify('fanout_commands', ids)
      .catch((err) => log.warn({ err, ids }, 'relays not woken; they find it at their next poll'));
  const jobs = new Jobs(db, packages, () => keys.privatePem, wakeRelays);
  const unshare = await shareEvents(store, jobs.events);
  let publicUrl = cfg.mail.publicUrl ?? opts.advertise ?? '';
  const links = new TicketLinks(await sharedSecret(db, 'ticket links', keys.privatePem), cfg.mail.resolveLinkTtl);
  const center = new AlertCenter(db, cfg.alerts, (id) => links.url(publicUrl, id), store.exclusive);
  const raise: RaiseAlert = async (a) => center.ingest([{ ...a, format: 'json', raw: JSON.stringify(a) }]);
  const tickets = new Tickets(db);
  const outages = new Outages(db);
  const relays = new RelayRegistry(
    db,
    log,
    cfg.alerts.heartbeatTimeout,
    raise,
    () => keys.privatePem,
    clientTls(opts.clientTls ?? {}),
    store.claim,
  );
  const plans = new Plans(db, relays, tickets, cfg.redistribution, log);
  relays.onHeartbeat = (relayId) => plans.askWanted(relayId);
  relays.owing = (relayIds) => plans.owing(relayIds);
  const mailer = new Mailer(db, cfg.mail, log, faults, store.dialect === 'postgres');
  const webhooks = new Webhooks(db, cfg.integrations, log, store.dialect === 'postgres');
  // Webhook events are queued with the change they announce (a master killed in between loses none).
  center.announce = tickets.announce = jobs.announce = webhooks.queue;
  center.events.on('ticket', () => webhooks.kick());
  const changed = (lists: Change['lists']) => () => jobs.events.emit('changed', { lists } satisfies Change);
  mailer.onChange = changed(['outbox', 'tickets']);
  plans.onChange = changed(['plans', 'failed']);
  center.events.on('changed', changed(['alerts', 'tickets', 'failed']));
  center.events.on('outbox', () => mailer.kick());
  jobs.onRelayJobComplete(async (relayId, jobId) => {
    if (await tickets.resolveJob(relayId, jobId, `the repair: job ${jobId} complete at ${relayId}`))
      log.info({ relayId, jobId }, 'failed distribution repaired: records and tickets resolved');
  });

  const app = createHttpServer({ logger: log, registry, onRoute: opts.onRoute, https: serverTls(opts.tls ?? {}) });
  const alertDeps = {
    db,
    center,
    tickets,
    outages,
    cfg: cfg.alerts,
    onTicketResolved: async (id: string, by: string) => {
      webhooks.kick();
      return plans.afterTicketResolved(id, by);
    },
    links,
    onMailQueued: () => mailer.kick(),
  };
  const verify = new DeviceVerification(db, relays);
  const cancel = jobCanceller(db, wakeRelays, () => keys.privatePem);
  const rollouts = new Rollouts(db, jobs, raise, cancel, faults);
  const channel = {
    verify,
    enrollments: new Enrollments(db),
    notify: wakeRelays,
    limits: cfg.limits,
    depotMaxBytes: cfg.depot.maxBytes,
    db,
    jobs,
    commands: new Commands(db, jobs.events, keys),
    packages,
    relays,
    keys,
    registry,
  };
  await describeApi(app);
  scope(app, 'admin', auth.admin, (s) => {
    s.addHook('onResponse', people.audit);
    adminRoutes(s, { db, scan, jobs, packages, relays, plans, keys, verify, rollouts, cancel, notify: channel.notify });
    rolloutRoutes(s, db, rollouts);
    peopleRoutes(s, people);
    alertAdminRoutes(s, alertDeps);
    alertmanagerRoutes(s, alertDeps);
    faultRoutes(s, faults);
  });
  scope(app, 'relay', auth.relay, (s) => relayChannelRoutes(s, channel));
  scope(app, 'content', auth.relayOrAdmin, (s) => blobRoutes(s, channel));
  scope(app, 'alert-intake', auth.anyone, (s) => alertIntakeRoutes(s, alertDeps));
  scope(app, 'public', null, (s) => (ticketLinkRoutes(s, alertDeps), apiDescriptionRoute(s)));
  await dashboardRoutes(app, auth, jobs, await sharedSecret(db, 'event tickets', keys.privatePem));

  return {
    app,
    db,
    cfg,
    log,
    async start() {
      const url = await listen(app, opts.listen);
      publicUrl ||= url;
      for (const b of [mailer, webhooks, relays]) b.start();
      rollouts.start(store.claim, log);
      return url;
    },
    async stop() {
      unshare();
      // Work under way (a mail being sent, a tick) ends before the database closes, or its record
      // is lost; a send is cut off at its claim, and this waits no longer than that.
      const quiet = Promise.all([relays, mailer, webhooks, rollouts].map((b) => b.stop()));
      await app.close();
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([quiet, new Promise((r) => (timer = setTimeout(r, CLAIM_MS)))]);
      clearTimeout(timer);
      await store.close();
    },
  };
}

export async function runMaster(opts: MasterOptions) {
  const m = await buildMaster(opts);
  process.stdout.write(`listening on ${await m.start()}\n`);
  onShutdown(async () => {
    m.log.info('shutting down');
    await m.stop();
  });
}
