// `fanout agent`: long-poll the relay, download with resume, verify, install, report.
import { createWriteStream, existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { Counter, Registry } from 'prom-client';
import { Faults } from '../common/faults.ts';
import { createLogger } from '../common/log.ts';
import { createHttpServer, listen, onShutdown, requireToken } from '../common/server.ts';
import { Client, HttpError } from '../protocol/client.ts';
import { sha256File } from '../protocol/package-file.ts';
import type { Assignment, PackageRef, TargetState } from '../protocol/types.ts';
import { AgentState, InstallError, installPackage, verifyDownloaded } from './install.ts';

export interface AgentOptions {
  relay: string;
  id: string;
  token: string;
  data: string;
  root: string;
  allowFaults?: boolean;
  listen?: string;
}

export async function runAgent(opts: AgentOptions) {
  const data = resolve(opts.data);
  const root = resolve(opts.root);
  await mkdir(join(data, 'cache'), { recursive: true });
  await mkdir(root, { recursive: true });
  const log = createLogger(`agent ${opts.id}`);
  const relay = new Client({ baseUrl: opts.relay, token: opts.token });
  const state = new AgentState(data);
  const faults = new Faults(!!opts.allowFaults);
  const stopping = new AbortController();
  const registry = new Registry();
  const installs = new Counter({
    name: 'fanout_agent_installs_total',
    help: 'Packages installed',
    labelNames: ['result'],
    registers: [registry],
  });

  // The master's key, from the relay at enrollment; kept for restarts while the relay is away.
  const keyFile = join(data, 'master.pub');
  let publicKey = existsSync(keyFile) ? await readFile(keyFile, 'utf8') : '';
  for (let attempt = 0; !stopping.signal.aborted; attempt++) {
    try {
      const r = await relay.get<{ publicKey: string }>('agent/v1/enroll');
      publicKey = r.publicKey;
      await writeFile(keyFile, publicKey);
      break;
    } catch (e) {
      if (e instanceof HttpError && (e.status === 401 || e.status === 403)) {
        process.stderr.write(`fanout agent: relay refused the token for ${opts.id}: ${e.message}\n`);
        process.exit(2);
      }
      if (publicKey) break;
      log.warn({ err: (e as Error).message }, 'relay unreachable; retrying enrollment');
      await sleep(Math.min(5000, 300 * 2 ** attempt));
    }
  }

  const report = async (a: Assignment, s: TargetState, extra: { failureType?: string; error?: string } = {}) => {
    await state.journal({ jobId: a.jobId, commandId: a.commandId, attempt: a.attempt, state: s, ...extra });
    for (let i = 0; !stopping.signal.aborted; i++) {
      try {
        await relay.post('agent/v1/reports', {
          jobId: a.jobId,
          commandId: a.commandId,
          attempt: a.attempt,
          state: s,
          ...extra,
        });
        return;
      } catch (e) {
        if (e instanceof HttpError && e.status >= 400 && e.status < 500) {
          log.warn({ err: e.message, jobId: a.jobId }, 'relay refused the report');
          return;
        }
        await sleep(Math.min(5000, 200 * 2 ** i));
      }
    }
  };

  /** Downloads into data/cache with Range resume; returns the verified file. */
  const download = async (pkg: PackageRef) => {
    const hex = pkg.digest.slice(7);
    const final = join(data, 'cache', hex);
    if (existsSync(final)) return final;
    const part = final + '.part';
    for (let attempt = 0; ; attempt++) {
      const from = existsSync(part) ? (await stat(part)).size : 0;
      try {
        if (from < pkg.size) {
          const res = await relay.raw('GET', `content/${pkg.digest}`, {
            headers: from ? { range: `bytes=${from}-` } : {},
            timeoutMs: 600_000,
            signal: stopping.signal,
          });
          const append = from > 0 && res.status === 206;
          await pipeline(
            Readable.fromWeb(res.body as import('node:stream/web').ReadableStream),
            createWriteStream(part, { flags: append ? 'a' : 'w' }),
          );
        }
        const digest = await sha256File(part);
        try {
          verifyDownloaded(pkg, digest, publicKey);
        } catch (e) {
          await rm(part, { force: true });
          throw e;
        }
        await rename(part, final);
        return final;
      } catch (e) {
        if (e instanceof InstallError || attempt >= 5 || stopping.signal.aborted) {
          if (e instanceof InstallError) throw e;
          throw new InstallError(
            'UNREACHABLE',
            `download of ${pkg.name}@${pkg.version} failed: ${(e as Error).message}`,
          );
        }
        log.warn({ err: (e as Error).message, attempt }, 'download interrupted; resuming');
        await sleep(300 * 2 ** attempt);
      }
    }
  };

  const work = async (a: Assignment) => {
    const installRoot = a.params.installRoot ? resolve(String(a.params.installRoot)) : root;
    const installed = await state.installed();
    const todo = a.packages.filter((p) => installed[`${p.name}@${p.version}`]?.digest !== p.digest);
    try {
      if (todo.length) {
        await report(a, 'downloading');
        const files = new Map<string, string>();
        for (const p of todo) files.set(p.digest, await download(p));
        await report(a, 'installing');
        for (const p of todo) {
          await installPackage({
            archive: files.get(p.digest)!,
            pkg: p,
            root: installRoot,
            jobId: a.jobId,
            params: a.params,
            faults,
          });
          await state.markInstalled({
            name: p.name,
            version: p.version,
            digest: p.digest,
            installedAt: new Date().toISOString(),
            jobId: a.jobId,
          });
          installs.inc({ result: 'installed' });
          log.info({ package: `${p.name}@${p.version}`, jobId: a.jobId }, 'installed');
        }
      }
      await report(a, 'installed');
    } catch (e) {
      const err = e instanceof InstallError ? e : new InstallError('INSTALL_FAILED', (e as Error).message);
      installs.inc({ result: 'failed' });
      log.error({ jobId: a.jobId, failureType: err.failureType, err: err.message }, 'assignment failed');
      await report(a, 'failed', { failureType: err.failureType, error: err.message });
    }
  };

  // Health, metrics and (with --allow-faults) fault injection, like every daemon.
  const server = createHttpServer({
    logger: log,
    registry,
    faults,
    adminAuth: requireToken(opts.token, `agent ${opts.id}'s token`),
  });
  await listen(server, opts.listen ?? '127.0.0.1:0');

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
          current = work(a);
          await current;
        }
        if (assignments.every((a) => done.has(a.assignmentId)) && assignments.length)
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
  const running = loop();
  onShutdown(async () => {
    stopping.abort();
    await current.catch(() => undefined);
    await running;
    await server.close();
  });
}
