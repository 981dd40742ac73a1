// Composition root of `fanout agent`: enroll at the relay, long-poll assignments, work them one by one.
import { EventEmitter, once } from 'node:events';
import { readdir, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Faults } from '../common/faults.ts';
import { makeFolder } from '../common/files.ts';
import { createLogger } from '../common/log.ts';
import { PinnedKey } from '../common/pinned-key.ts';
import { onShutdown } from '../common/shutdown.ts';
import { type ClientTlsFiles, clientTls, type ServerTlsFiles, serverTls } from '../common/tls.ts';
import { type ArchiveLimits, DEFAULT_LIMITS } from '../protocol/limits.ts';
import type { MaintenanceWindow } from '../protocol/windows.ts';
import { enrollAtRelay } from './enroll.ts';
import { agentServer, listenPlain } from './http.ts';
import { Listener } from './listen.ts';
import { lazyMetrics } from './metrics.ts';
import { RelayLink } from './relay-link.ts';
import { AgentState } from './state.ts';
import { verifyAndReport } from './verify.ts';
import { Worker } from './worker.ts';

export interface AgentOptions {
  relay: string;
  id: string;
  token: string;
  data: string;
  root: string;
  allowFaults?: boolean;
  listen?: string;
  /** `SHA256:…`: the master key the first enrollment must find. */
  masterKey?: string;
  tls?: ServerTlsFiles;
  clientTls?: ClientTlsFiles;
  /** Versions of each package kept installed (default 2; the current one always stays). */
  keepVersions?: number;
  /** How often installed versions are hashed again for drift (default 6 h; 0: only when asked). */
  verifyEveryMs?: number;
  /** How long the relay may be unreachable before the agent turns to a fallback relay (default 2 m). */
  failoverAfterMs?: number;
  /** How often the agent reads its enrollment again: fallbacks' new addresses, key rotations (default 10 m). */
  enrollEveryMs?: number;
}

export { AgentRefused } from './enroll.ts';

export async function buildAgent(opts: AgentOptions) {
  const data = resolve(opts.data);
  const root = resolve(opts.root);
  await makeFolder(data);
  await makeFolder(root);
  // Packages are no longer kept as archives (they are unpacked as they download): an older agent's
  // cache goes, and so do staging folders of downloads cut short when an agent stopped.
  await rm(join(data, 'cache'), { recursive: true, force: true });
  for (const n of await readdir(root))
    if (n.startsWith('.staging-')) await rm(join(root, n), { recursive: true, force: true });
  const log = createLogger(`agent ${opts.id}`);
  const link = new RelayLink(
    opts.relay,
    opts.token,
    clientTls(opts.clientTls ?? {}),
    opts.failoverAfterMs ?? 120_000,
    log,
  );
  const faults = new Faults(!!opts.allowFaults);
  const stopping = new AbortController();
  const installs = { installed: 0, failed: 0 };
  const metrics = lazyMetrics(installs);
  const key = new PinnedKey(data, opts.masterKey);
  if (key.notice) log.warn(key.notice);
  let limits: ArchiveLimits = DEFAULT_LIMITS;
  const state = new AgentState(data);
  let windows: MaintenanceWindow[] = [];
  const windowEvents = new EventEmitter();
  const worker = new Worker({
    get relay() {
      return link.client;
    },
    state,
    root,
    faults,
    log,
    counted: (result) => void installs[result]++,
    keys: () => key.keys,
    rekey: () => enroll(),
    limits: () => limits,
    deviceId: opts.id,
    signal: stopping.signal,
    keepVersions: opts.keepVersions ?? 2,
    windows: () => windows,
    windowsChanged: (until) => once(windowEvents, 'changed', { signal: until }),
  });

  // Health, metrics and (with --allow-faults) fault injection, like every daemon; its token is the admin.
  const server = agentServer({
    token: opts.token,
    agentId: opts.id,
    faults,
    registry: metrics,
    tls: serverTls(opts.tls ?? {}),
  });

  const enroll = () =>
    enrollAtRelay({ link, key, log, id: opts.id, signal: stopping.signal, onLimits: (l) => (limits = l) });

  const listener = new Listener({
    link,
    worker,
    log,
    stopping: stopping.signal,
    enroll,
    verify: async (requestId) => {
      await verifyAndReport({ state, root, relay: link.client, log }, requestId);
    },
    onWindows: (w) => {
      const changed = JSON.stringify(w) !== JSON.stringify(windows);
      windows = w;
      if (changed) windowEvents.emit('changed');
    },
  });

  let running: Promise<void> = Promise.resolve();
  let verifier: NodeJS.Timeout | undefined;
  let reader: NodeJS.Timeout | undefined;
  return {
    server,
    log,
    async start() {
      await enroll();
      const url = await listenPlain(server, opts.listen ?? '127.0.0.1:0');
      running = listener.run();
      const every = opts.verifyEveryMs ?? 6 * 3_600_000;
      if (every > 0) {
        verifier = setInterval(() => void listener.verify(), every);
        verifier.unref();
      }
      // A fallback relay that moved is known before this relay is needed to fail over from.
      reader = setInterval(
        () => void enroll().catch((err) => log.warn({ err: (err as Error).message }, 'enrollment not read again')),
        opts.enrollEveryMs ?? 600_000,
      );
      reader.unref();
      return url;
    },
    async stop() {
      clearInterval(verifier);
      clearInterval(reader);
      stopping.abort();
      await listener.settled();
      await running;
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

export async function runAgent(opts: AgentOptions) {
  const agent = await buildAgent(opts);
  process.stdout.write(`listening on ${await agent.start()}\n`);
  onShutdown(async () => {
    await agent.stop();
  });
}
