// One assignment on an endpoint: check the master's signature, download what is not installed,
// verify, install, and report each step.
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Faults } from '../common/faults.ts';
import type { Logger } from '../common/log.ts';
import { checkedWithReread } from '../common/pinned-key.ts';
import type { ArchiveLimits } from '../protocol/archive.ts';
import { checkAssignment } from '../protocol/assignment.ts';
import { type Client, HttpError } from '../protocol/client.ts';
import type { Assignment, TargetState } from '../protocol/types.ts';
import { compareVersions } from '../protocol/versions.ts';
import type { MaintenanceWindow } from '../protocol/windows.ts';
import { attest } from './attest.ts';
import { type AgentState, Cancelled, InstallError } from './state.ts';

export interface WorkerDeps {
  relay: Client;
  state: AgentState;
  root: string;
  faults: Faults;
  log: Logger;
  /** Counts installs by result (for /metrics). */
  counted: (result: 'installed' | 'failed') => void;
  /** The master keys this agent trusts. */
  keys: () => readonly string[];
  /** Reads the enrollment again: after `fanout key rotate`, commands come signed by a key not yet known. */
  rekey: () => Promise<void>;
  /** The archive rules' limits the master sets. */
  limits: () => ArchiveLimits;
  deviceId: string;
  signal: AbortSignal;
  /** Versions of a package kept installed (DESIGN §17); older ones are removed after an install. */
  keepVersions: number;
  /** This endpoint's maintenance windows, as its relay last said (none: install at once). */
  windows: () => MaintenanceWindow[];
  /** Resolves when the relay tells of other windows (or `until` aborts). */
  windowsChanged: (until: AbortSignal) => Promise<unknown>;
}

export class Worker {
  constructor(private readonly d: WorkerDeps) {}

  /**
   * Reports a step, journalled first; retried until the relay answers (a refusal is final). Throws
   * Cancelled when the relay says the job was cancelled here before it installed.
   */
  async report(
    a: Assignment,
    s: TargetState,
    extra: { failureType?: string; error?: string; trees?: Record<string, string> } = {},
  ) {
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
        if (e instanceof HttpError && e.code === 'FANOUT_ERR_TARGET_CANCELLED') throw new Cancelled(e.message);
        if (e instanceof HttpError && e.status >= 400 && e.status < 500) {
          this.d.log.warn({ err: e.message, jobId: a.jobId }, 'relay refused the report');
          return;
        }
        await sleep(Math.min(5000, 200 * 2 ** i));
      }
    }
  }

  /** Going down a version needs a signed allowDowngrade (a rollback). */
  private async refuseDowngrade(packages: { name: string; version: string }[], params: { allowDowngrade?: unknown }) {
    const installed = await this.d.state.installed();
    for (const p of packages) {
      const current = this.d.state.currentVersion(installed, p.name);
      if (current && compareVersions(p.version, current) < 0 && params.allowDowngrade !== true)
        throw new InstallError(
          'DOWNGRADE_REFUSED',
          `${p.name}@${p.version} is lower than the installed ${current}; only a signed allowDowngrade (a rollback) may go down`,
        );
    }
  }

  /**
   * Works an assignment to its end. `withdrawn` aborts when the relay stops offering it: heeded until
   * the install begins. Answers `withdrawn` when it stopped for that (nothing installed, nothing
   * reported), else `done`.
   */
  async work(
    a: Assignment,
    withdrawn = new AbortController().signal,
    /** Lends the endpoint's turn while the assignment downloads or waits for its window (turns.ts). */
    lend: <T>(wait: () => Promise<T>) => Promise<T> = (wait) => wait(),
  ): Promise<'done' | 'withdrawn'> {
    const { log } = this.d;
    if (withdrawn.aborted) return 'withdrawn'; // withdrawn while it waited for its turn
    // Nothing is downloaded, let alone run, before the master's signature says this device gets exactly this.
    const check = await checkedWithReread(
      this.d.keys,
      (keys) => checkAssignment(a, this.d.deviceId, keys),
      (c) => !c.ok,
      () => this.d.rekey().catch((err) => log.warn({ err: err.message }, 'enrollment not read again')),
    );
    if (!check.ok) {
      log.error({ jobId: a.jobId, failureType: check.failureType, err: check.reason }, 'assignment refused');
      this.d.counted('failed');
      await this.report(a, 'failed', { failureType: check.failureType, error: `refused: ${check.reason}` });
      return 'done';
    }
    const { params } = check;
    const installRoot = params.installRoot ? resolve(String(params.installRoot)) : this.d.root;
    const installed = await this.d.state.installed();
    // Installed, but no longer what was signed (drift): installed again.
    const drifted = new Set<string>();
    for (const p of check.packages) {
      const had = installed[`${p.name}@${p.version}`];
      if (had?.digest !== p.digest || !p.tree) continue;
      const at = await attest(installRoot, p);
      if (!at.ok || at.extra.some((x) => !(had.extra ?? []).includes(x))) drifted.add(p.digest);
    }
    const todo = check.packages.filter(
      (p) => installed[`${p.name}@${p.version}`]?.digest !== p.digest || drifted.has(p.digest),
    );
    // Installed and intact, but not what `current` points at (a rollback): switched to, nothing downloaded.
    const switchOnly = check.packages.filter(
      (p) => !todo.includes(p) && this.d.state.currentVersion(installed, p.name) !== p.version,
    );
    const attested = new Map<string, string>();
    try {
      await this.refuseDowngrade([...todo, ...switchOnly], params);
      if (params.uninstall) {
        const { uninstallPackage } = await import('./uninstall.ts');
        const removed = await uninstallPackage({
          name: params.uninstall,
          root: installRoot,
          state: this.d.state,
          jobId: a.jobId,
          params,
        });
        log.info({ package: params.uninstall, jobId: a.jobId, removed }, 'uninstalled');
      }
      if (switchOnly.length) {
        const { switchCurrent } = await import('./install.ts');
        for (const p of switchOnly) {
          await switchCurrent(join(installRoot, p.name), p.version);
          await this.d.state.markInstalled({
            ...installed[`${p.name}@${p.version}`],
            installedAt: new Date().toISOString(),
          });
          log.info({ package: `${p.name}@${p.version}`, jobId: a.jobId }, 'current switched back, nothing downloaded');
        }
      }
      if (todo.length) {
        await this.report(a, 'downloading');
        const { deliver } = await import('./deliver.ts');
        const trees = await deliver(this.d, a, {
          todo,
          params,
          installRoot,
          drifted,
          report: (s) => this.report(a, s),
          withdrawn,
          lend,
          // Another job may have installed a newer version while this one waited for its window.
          recheck: () => this.refuseDowngrade(todo, params),
        });
        for (const [digest, tree] of trees) attested.set(digest, tree);
      }
      // The disk, not this code path, says it is installed: each package hashed against its signed tree.
      const trees: Record<string, string> = {};
      for (const p of check.packages) {
        const done = attested.get(p.digest);
        if (done) {
          trees[`${p.name}@${p.version}`] = done;
          continue;
        }
        const at = await attest(installRoot, p);
        if (!at.ok) throw new InstallError('TAMPERED', `${at.problem} (tree ${at.tree || 'none'})`);
        trees[`${p.name}@${p.version}`] = at.tree;
      }
      await this.report(a, 'installed', { trees });
    } catch (e) {
      // Its target already ended at the relay (cancelled, say): nothing to report, nothing installed.
      if (e instanceof Cancelled) {
        log.info({ jobId: a.jobId, why: e.message }, 'not installed');
        return 'withdrawn';
      }
      const err = e instanceof InstallError ? e : new InstallError('INSTALL_FAILED', (e as Error).message);
      this.d.counted('failed');
      log.error({ jobId: a.jobId, failureType: err.failureType, err: err.message }, 'assignment failed');
      await this.report(a, 'failed', { failureType: err.failureType, error: err.message });
    }
    return 'done';
  }
}
