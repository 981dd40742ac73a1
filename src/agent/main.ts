// Composition root of `fanout agent`: enroll at the relay, long-poll assignments, work them one by one.
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Counter, Registry } from 'prom-client';
import { singleToken } from '../common/auth.ts';
import { Faults } from '../common/faults.ts';
import { createLogger } from '../common/log.ts';
import { createHttpServer, faultRoutes, listen, onShutdown, type ServerOptions, scope } from '../common/server.ts';
import { Client, HttpError } from '../protocol/client.ts';
import type { Assignment } from '../protocol/types.ts';
import { AgentState } from './install.ts';
import { Worker } from './worker.ts';

export interface AgentOptions {
  relay: string;
  id: string;
  token: string;
  data: string;
  root: string;
  allowFaults?: boolean;
  listen?: string;
  onRoute?: ServerOptions['onRoute'];
}

export class AgentRefused extends Error {
  override name = 'AgentRefused';
}

export async function buildAgent(opts: AgentOptions) {
  const data = resolve(opts.data);
  const root = resolve(opts.root);
  const cacheDir = join(data, 'cache');
  await mkdir(cacheDir, { recursive: true });
  await mkdir(root, { recursive: true });
  const log = createLogger(`agent ${opts.id}`);
  const relay = new Client({ baseUrl: opts.relay, token: opts.token });
  const faults = new Faults(!!opts.allowFaults);
  const stopping = new AbortController();
  const registry = new Registry();
  const installs = new Counter({
    name: 'fanout_agent_installs_total',
    help: 'Packages installed',
    labelNames: ['result'],
    registers: [registry],
  });
  const keyFile = join(data, 'master.pub');
  let publicKey = existsSync(keyFile) ? await readFile(keyFile, 'utf8') : '';
  const worker = new Worker({
    relay,
    state: new AgentState(data),
    root,
    cacheDir,
    faults,
    log,
    installs,
    publicKey: () => publicKey,
    signal: stopping.signal,
  });

  // Health, metrics and (with --allow-faults) fault injection, like every daemon; its token is the admin.
  const app = createHttpServer({ logger: log, registry, onRoute: opts.onRoute });
  scope(app, 'admin', singleToken(opts.token, `agent ${opts.id}`, `agent ${opts.id}'s token`), (s) =>
    faultRoutes(s, faults),
  );

  /** The master's key, from the relay at enrollment; kept for restarts while the relay is away. */
  const enroll = async () => {
    for (let attempt = 0; !stopping.signal.aborted; attempt++) {
      try {
        publicKey = (await relay.get<{ publicKey: string }>('agent/v1/enroll')).publicKey;
        await writeFile(keyFile, publicKey);
        return;
      } catch (e) {
        if (e instanceof HttpError && (e.status === 401 || e.status === 403))
          throw new AgentRefused(`relay refused the token for ${opts.id}: ${e.message}`);
        if (publicKey) return;
        log.warn({ err: (e as Error).message }, 'relay unreachable; retrying enrollment');
        await sleep(Math.min(5000, 300 * 2 ** attempt), undefined, { signal: stopping.signal }).catch(() => undefined);
      }
    }
  };

  let current: Promise<void> = Promise.resolve();
  const loop = async () => {
    const done = new Set<string>();
    let failures = 0;
    while (!stopping.signal.aborted) {
      try {
        const { assignments } = await relay.get<{ assignments: Assignment[] }>('agent/v1/assignments?wait=20', {
          timeoutMs: 30_000,
          signal: stopping.signal,
        });
        failures = 0;
        for (const a of assignments) {
          if (done.has(a.assignmentId)) continue;
          done.add(a.assignmentId);
          current = worker.work(a);
          await current;
        }
        if (assignments.length && assignments.every((a) => done.has(a.assignmentId)))
          await sleep(500, undefined, { signal: stopping.signal }).catch(() => undefined);
      } catch (e) {
        if (stopping.signal.aborted) break;
        if (failures++ === 0) log.warn({ err: (e as Error).message }, 'relay unreachable; will keep trying');
        await sleep(Math.min(5000, 200 * 2 ** Math.min(failures, 5)), undefined, { signal: stopping.signal }).catch(
          () => undefined,
        );
      }
    }
  };

  let running: Promise<void> = Promise.resolve();
  return {
    app,
    log,
    async start() {
      await enroll();
      const url = await listen(app, opts.listen ?? '127.0.0.1:0');
      running = loop();
      return url;
    },
    async stop() {
      stopping.abort();
      await current.catch(() => undefined);
      await running;
      await app.close();
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
