// Composition root of `fanout agent`: enroll at the relay, long-poll assignments, work them one by one.
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Faults } from '../common/faults.ts';
import { createLogger } from '../common/log.ts';
import { PinnedKey } from '../common/pinned-key.ts';
import { onShutdown } from '../common/shutdown.ts';
import { type ClientTlsFiles, clientTls, type ServerTlsFiles, serverTls } from '../common/tls.ts';
import { type ArchiveLimits, DEFAULT_LIMITS } from '../protocol/limits.ts';
import type { Assignment } from '../protocol/types.ts';
import type { MaintenanceWindow } from '../protocol/windows.ts';
import { enrollAtRelay } from './enroll.ts';
import { agentServer, listenPlain } from './http.ts';
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
}

export { AgentRefused } from './enroll.ts';

export async function buildAgent(opts: AgentOptions) {
  const data = resolve(opts.data);
  const root = resolve(opts.root);
  await mkdir(data, { recursive: true });
  await mkdir(root, { recursive: true });
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
  let limits: ArchiveLimits = DEFAULT_LIMITS;
  const state = new AgentState(data);
  let windows: MaintenanceWindow[] = [];
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
    limits: () => limits,
    deviceId: opts.id,
    signal: stopping.signal,
    keepVersions: opts.keepVersions ?? 2,
    windows: () => windows,
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

  let current: Promise<void> = Promise.resolve();
  // Verification runs between installs, never beside one: it hashes the same folders.
  const verify = (requestId?: string) => {
    current = current
      .then(() => verifyAndReport({ state, root, relay: link.client, log }, requestId))
      .then(
        () => undefined,
        (err) => log.warn({ err: (err as Error).message }, 'verification failed'),
      );
    return current;
  };
  const loop = async () => {
    const done = new Set<string>();
    const answered = new Set<string>();
    let failures = 0;
    while (!stopping.signal.aborted) {
      try {
        const {
          assignments,
          verify: asked,
          windows: told,
        } = await link.client.get<{ assignments: Assignment[]; verify?: string; windows?: MaintenanceWindow[] }>(
          'agent/v1/assignments?wait=20',
          {
            timeoutMs: 30_000,
            signal: stopping.signal,
          },
        );
        failures = 0;
        link.ok();
        windows = told ?? [];
        if (asked && !answered.has(asked)) {
          answered.add(asked);
          await verify(asked);
        }
        for (const a of assignments) {
          if (done.has(a.assignmentId)) continue;
          done.add(a.assignmentId);
          current = current.then(() => worker.work(a));
          await current;
        }
        if (assignments.length && assignments.every((a) => done.has(a.assignmentId)))
          await sleep(500, undefined, { signal: stopping.signal }).catch(() => undefined);
      } catch (e) {
        if (stopping.signal.aborted) break;
        if (failures++ === 0) log.warn({ err: (e as Error).message }, 'relay unreachable; will keep trying');
        if (link.failed()) {
          failures = 0;
          await enroll().catch((err) => log.warn({ err: (err as Error).message }, 'fallback relay refused us for now'));
          continue;
        }
        await sleep(Math.min(5000, 200 * 2 ** Math.min(failures, 5)), undefined, { signal: stopping.signal }).catch(
          () => undefined,
        );
      }
    }
  };

  let running: Promise<void> = Promise.resolve();
  let verifier: NodeJS.Timeout | undefined;
  return {
    server,
    log,
    async start() {
      await enroll();
      const url = await listenPlain(server, opts.listen ?? '127.0.0.1:0');
      running = loop();
      const every = opts.verifyEveryMs ?? 6 * 3_600_000;
      if (every > 0) {
        verifier = setInterval(() => void verify(), every);
        verifier.unref();
      }
      return url;
    },
    async stop() {
      clearInterval(verifier);
      stopping.abort();
      await current.catch(() => undefined);
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
