// One assignment on an endpoint: download what is not installed, verify, install, report each step.
import { resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Faults } from '../common/faults.ts';
import type { Logger } from '../common/log.ts';
import { type Client, HttpError } from '../protocol/client.ts';
import type { Assignment, TargetState } from '../protocol/types.ts';
import { download } from './download.ts';
import { type AgentState, InstallError } from './state.ts';

export interface WorkerDeps {
  relay: Client;
  state: AgentState;
  root: string;
  cacheDir: string;
  faults: Faults;
  log: Logger;
  /** Counts installs by result (for /metrics). */
  counted: (result: 'installed' | 'failed') => void;
  publicKey: () => string;
  signal: AbortSignal;
}

export class Worker {
  constructor(private readonly d: WorkerDeps) {}

  /** Reports a step, journalled first; retried until the relay answers (a refusal is final). */
  async report(a: Assignment, s: TargetState, extra: { failureType?: string; error?: string } = {}) {
    await this.d.state.journal({ jobId: a.jobId, commandId: a.commandId, attempt: a.attempt, state: s, ...extra });
    for (let i = 0; !this.d.signal.aborted; i++) {
      try {
        await this.d.relay.post('agent/v1/reports', {
          jobId: a.jobId,
          commandId: a.commandId,
          attempt: a.attempt,
          state: s,
          ...extra,
        });
        return;
      } catch (e) {
        if (e instanceof HttpError && e.status >= 400 && e.status < 500) {
          this.d.log.warn({ err: e.message, jobId: a.jobId }, 'relay refused the report');
          return;
        }
        await sleep(Math.min(5000, 200 * 2 ** i));
      }
    }
  }

  async work(a: Assignment) {
    const { log } = this.d;
    const installRoot = a.params.installRoot ? resolve(String(a.params.installRoot)) : this.d.root;
    const installed = await this.d.state.installed();
    const todo = a.packages.filter((p) => installed[`${p.name}@${p.version}`]?.digest !== p.digest);
    try {
      if (todo.length) {
        await this.report(a, 'downloading');
        const files = new Map<string, string>();
        for (const pkg of todo)
          files.set(
            pkg.digest,
            await download({
              pkg,
              relay: this.d.relay,
              cacheDir: this.d.cacheDir,
              publicKey: this.d.publicKey(),
              log,
              signal: this.d.signal,
            }),
          );
        await this.report(a, 'installing');
        for (const p of todo) {
          // The install code (and tar) loads only when there is something to install.
          const { installPackage } = await import('./install.ts');
          await installPackage({
            archive: files.get(p.digest)!,
            pkg: p,
            root: installRoot,
            jobId: a.jobId,
            params: a.params,
            faults: this.d.faults,
          });
          await this.d.state.markInstalled({
            name: p.name,
            version: p.version,
            digest: p.digest,
            installedAt: new Date().toISOString(),
            jobId: a.jobId,
          });
          this.d.counted('installed');
          log.info({ package: `${p.name}@${p.version}`, jobId: a.jobId }, 'installed');
        }
      }
      await this.report(a, 'installed');
    } catch (e) {
      const err = e instanceof InstallError ? e : new InstallError('INSTALL_FAILED', (e as Error).message);
      this.d.counted('failed');
      log.error({ jobId: a.jobId, failureType: err.failureType, err: err.message }, 'assignment failed');
      await this.report(a, 'failed', { failureType: err.failureType, error: err.message });
    }
  }
}
