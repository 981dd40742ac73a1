// The packages an assignment still needs: each downloaded and unpacked in one pass (or kept from a
// try that failed after it), then a maintenance window, then each installed, attested and recorded.
// Loaded only when there is something to install, with tar and the install code.
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Assignment, JobParams, PackageRef, TargetState } from '../protocol/types.ts';
import { attest, scriptsDone, treeFile } from './attest.ts';
import { download, type Staged } from './download.ts';
import { installPackage, stagingFor } from './install.ts';
import { pruneVersions } from './retention.ts';
import { Cancelled, InstallError } from './state.ts';
import { untilWindow, windowOpenNow } from './window-wait.ts';
import type { WorkerDeps } from './worker.ts';

/** Installs `todo`; answers each package's attested tree by digest. */
export async function deliver(
  d: WorkerDeps,
  a: Assignment,
  x: {
    todo: PackageRef[];
    params: JobParams;
    installRoot: string;
    drifted: Set<string>;
    report: (s: TargetState) => Promise<void>;
    /** Aborted when the relay withdraws the assignment: heeded until the install begins, not after. */
    withdrawn: AbortSignal;
    /** Lends the endpoint's turn to urgent work while this downloads or waits for its window. */
    lend: <T>(wait: () => Promise<T>) => Promise<T>;
    /** Checks again, after the wait, what another job may have changed meanwhile. */
    recheck: () => Promise<void>;
  },
): Promise<Map<string, string>> {
  const { log } = d;
  const stop = AbortSignal.any([d.signal, x.withdrawn]);
  const unlessWithdrawn = () => {
    if (x.withdrawn.aborted) throw new Cancelled('the relay no longer offers it (cancelled, or ended there)');
  };
  const staged = new Map<string, Staged>();
  const trees = new Map<string, string>();
  // A download changes nothing installed: urgent work goes meanwhile (a slow download, say).
  const fetchAll = async () => {
    for (const pkg of x.todo) {
      if (!x.drifted.has(pkg.digest) && (await keptWhole(x.installRoot, pkg))) {
        log.info({ package: `${pkg.name}@${pkg.version}`, jobId: a.jobId }, 'kept from an earlier try, not downloaded');
        continue;
      }
      const into = stagingFor(x.installRoot, pkg);
      try {
        staged.set(
          pkg.digest,
          await download({ pkg, relay: d.relay, into, keys: d.keys(), limits: d.limits(), log, signal: stop }),
        );
      } catch (e) {
        // Stopped (the agent restarts: the relay offers it again) or withdrawn: nothing installed.
        if (d.signal.aborted) throw new Cancelled('the agent stopped while it downloaded');
        unlessWithdrawn();
        throw e;
      }
    }
  };
  try {
    await x.lend(fetchAll);
    const waits = x.params.ignoreWindows !== true && !windowOpenNow(d.windows());
    if (waits)
      await x.lend(() =>
        untilWindow(d.windows, stop, d.log, a.jobId, () => x.report('waiting_window'), d.windowsChanged),
      );
    // Stopped meanwhile (the agent restarts): nothing installed; the relay offers it again.
    if (d.signal.aborted)
      throw new Cancelled(`the agent stopped while it ${waits ? 'waited for a window' : 'waited for its turn'}`);
    unlessWithdrawn();
    // Urgent work went while this downloaded or waited: it may have installed a newer version.
    await x.recheck();
    await x.report('installing');
    for (const p of x.todo) {
      const hashed = await installPackage({
        staged: staged.get(p.digest),
        pkg: p,
        root: x.installRoot,
        jobId: a.jobId,
        params: x.params,
        faults: d.faults,
        again: x.drifted.has(p.digest),
        onCutOff: () =>
          log.warn(
            { package: `${p.name}@${p.version}`, jobId: a.jobId },
            'its scripts were cut off when the agent stopped; they run again, with FANOUT_INTERRUPTED=1',
          ),
      });
      staged.delete(p.digest);
      const at = await attest(x.installRoot, p, hashed);
      if (!at.ok) throw new InstallError('TAMPERED', `${at.problem} (tree ${at.tree || 'none'})`);
      trees.set(p.digest, at.tree);
      await d.state.markInstalled({
        name: p.name,
        version: p.version,
        digest: p.digest,
        installedAt: new Date().toISOString(),
        jobId: a.jobId,
        root: x.installRoot,
        tree: at.tree,
        extra: at.extra,
      });
      d.counted('installed');
      log.info({ package: `${p.name}@${p.version}`, jobId: a.jobId }, 'installed');
      const pruned = await pruneVersions(d.state, x.installRoot, p.name, d.keepVersions);
      if (pruned.length) log.info({ package: p.name, versions: pruned }, 'old versions removed');
    }
    return trees;
  } finally {
    // What was downloaded for a package that did not get installed is not kept.
    for (const s of staged.values()) await rm(s.dir, { recursive: true, force: true });
  }
}

/**
 * The version's folder as its extraction left it, with nothing added: the signed tree on disk, not
 * yet recorded as installed (its scripts failed, or the agent stopped before it recorded the install).
 */
async function keptWhole(root: string, pkg: PackageRef) {
  if (!existsSync(join(root, pkg.name, pkg.version)) || !existsSync(treeFile(root, pkg))) return false;
  const at = await attest(root, pkg);
  if (!at.ok || !at.tree) return false;
  // Once the scripts ran, files they added are theirs; before that, an added file is not the package.
  return at.extra.length === 0 || scriptsDone(root, pkg);
}
