// Installing one package on an endpoint: check its staged files, put them in place, run the scripts,
// switch `current`.
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Faults } from '../common/faults.ts';
import { writeDurably } from '../common/files.ts';
import type { FailureType } from '../protocol/failure-types.ts';
import { parseManifest } from '../protocol/package-file.ts';
import { hashFolder, type TreeEntry, treeHash } from '../protocol/tree.ts';
import type { JobParams, PackageRef } from '../protocol/types.ts';
import { type Hashed, installedMarker, runningMarker, scriptsDone, treeFile } from './attest.ts';
import { ScriptRun } from './cut-off.ts';
import type { Staged } from './download.ts';
import { run } from './scripts.ts';
import { InstallError } from './state.ts';

/** Where a package is unpacked while it downloads: beside the packages, so it is renamed into place. */
// Each download its own folder: an urgent job may fetch the version another job is fetching.
let downloads = 0;
export const stagingFor = (root: string, pkg: { name: string; version: string }) =>
  join(root, `.staging-${pkg.name}-${pkg.version}-${process.pid}-${++downloads}`);

/**
 * Installs a package into <root>/<name>/<version> and points `current` at it: from its staging folder
 * (downloaded and verified), or, with none, from the version's folder a failed try left intact.
 */
export async function installPackage(x: {
  staged?: Staged;
  pkg: PackageRef;
  root: string;
  jobId: string;
  params: JobParams;
  faults: Faults;
  /** Install again even if this version is recorded as installed (its files drifted). */
  again?: boolean;
  /** Told when the scripts run again because the agent's stop cut off their last run. */
  onCutOff?: () => void;
}) {
  const { pkg } = x;
  const base = join(x.root, pkg.name);
  const target = join(base, pkg.version);
  // Written once the scripts succeeded: an agent killed before it recorded the install only switches
  // `current` on its next try, and does not run the scripts twice.
  const done = installedMarker(x.root, pkg);
  if (!x.again && existsSync(target) && scriptsDone(x.root, pkg)) {
    if (x.staged) await rm(x.staged.dir, { recursive: true, force: true });
    await rm(runningMarker(x.root, pkg), { force: true }); // stopped between the two markers
    await switchCurrent(base, pkg.version);
    return undefined;
  }
  // Scripts run at least once: cut off by the agent stopping (killed, power lost), they run again on
  // its next try, told so, since they may have done part or all of their work already. What is left
  // of the cut-off run is stopped first, before its folder is replaced (cut-off.ts).
  const scripts = await ScriptRun.prepare(x.root, pkg, x.jobId);
  if (scripts.interrupted) x.onCutOff?.();
  const placed = x.staged ? await placeStaged(x.staged, pkg, x.root, done) : undefined;
  const manifest = placed
    ? placed.manifest
    : await readFile(join(target, 'fanout.json'), 'utf8').then(
        (t) => parseManifest(t, `${pkg.name}@${pkg.version}`),
        (e: Error) => {
          throw new InstallError('PACKAGE_INVALID', e.message);
        },
      );
  const env = {
    ...process.env,
    FANOUT_PACKAGE: pkg.name,
    FANOUT_VERSION: pkg.version,
    FANOUT_JOB: x.jobId,
    ...(scripts.interrupted ? { FANOUT_INTERRUPTED: '1' } : {}),
  };
  // Capped at a day: a timer past ~24.8 days would fire at once.
  const timeoutMs = Math.min(86_400_000, 1000 * Number(x.params.timeoutSec ?? manifest.install.timeoutSec ?? 120));
  const injected = x.faults.take('agent.install');
  if (injected?.startsWith('exit:'))
    throw new InstallError('INSTALL_FAILED', `install script exited with ${injected.slice(5)} (injected)`);
  const opts = (label: string) => ({
    cwd: target,
    env,
    timeoutMs,
    label,
    onSpawn: (pid: number) => scripts.spawned(pid),
  });
  scripts.begin();
  try {
    if (x.params.preCommand) await run('/bin/sh', ['-c', String(x.params.preCommand)], opts('preCommand'));
    if (manifest.install.run) {
      const script = join(target, manifest.install.run);
      if (!script.startsWith(target + '/') || !existsSync(script))
        throw new InstallError('PACKAGE_INVALID', `install.run "${manifest.install.run}" is not a file in the package`);
      await run('/bin/sh', [script], opts(`install script ${manifest.install.run}`));
    }
    if (x.params.postCommand) await run('/bin/sh', ['-c', String(x.params.postCommand)], opts('postCommand'));
  } catch (e) {
    await scripts.end();
    throw e;
  }
  writeDurably(done, `${pkg.digest}\n`);
  await scripts.end();
  await switchCurrent(base, pkg.version);
  return placed?.hashed;
}

/**
 * Checks the staged files before anything runs, then renames them into place: the manifest names
 * this package, the files are the signed tree, and the folder holds exactly the archive's entries.
 * Their contents were hashed as they were written (download.ts). Each file's status is kept, so the
 * attestation after the scripts reads again only what may have changed since (attest.ts).
 */
async function placeStaged(staged: Staged, pkg: PackageRef, root: string, done: string) {
  const { dir, extracted } = staged;
  const base = join(root, pkg.name);
  const target = join(base, pkg.version);
  const refuse = async (failureType: FailureType, message: string) => {
    await rm(dir, { recursive: true, force: true });
    return new InstallError(failureType, message);
  };
  let manifest: ReturnType<typeof parseManifest>;
  try {
    manifest = parseManifest(extracted.manifest ?? '{}', `${pkg.name}@${pkg.version}`);
  } catch (e) {
    throw await refuse('PACKAGE_INVALID', (e as Error).message);
  }
  if (manifest.name !== pkg.name || manifest.version !== pkg.version)
    throw await refuse(
      'PACKAGE_INVALID',
      `archive says ${manifest.name}@${manifest.version}, the command says ${pkg.name}@${pkg.version}`,
    );
  const shape = (es: readonly TreeEntry[]) => es.map((e) => `${e.mode} ${e.path}`).join('\n');
  const sums = new Map(extracted.entries.map((e) => [e.path, e.sha256]));
  const files: Hashed['files'] = new Map();
  const written = await hashFolder(dir, async (_file, st, path) => {
    files.set(path, { sha256: sums.get(path) ?? '', st });
    return '';
  });
  if (shape(written) !== shape(extracted.entries))
    throw await refuse('EXTRACT_FAILED', `${pkg.name}@${pkg.version}: the extracted files differ from the archive`);
  if (pkg.tree && treeHash(extracted.entries) !== pkg.tree)
    throw await refuse('TAMPERED', `${pkg.name}@${pkg.version}: the extracted files are not the signed tree`);
  await mkdir(base, { recursive: true });
  await rm(done, { force: true });
  await rm(target, { recursive: true, force: true });
  await rename(dir, target);
  await writeFile(treeFile(root, pkg), JSON.stringify(extracted.entries));
  // Written after every file of the package and before the scripts: its change time divides the two.
  const since = (await stat(treeFile(root, pkg))).ctimeMs;
  return { manifest, hashed: { files, since } satisfies Hashed };
}

/** Atomic switch: a new link beside `current`, renamed over it. */
export async function switchCurrent(base: string, version: string) {
  const tmpLink = join(base, `.current-${process.pid}`);
  await rm(tmpLink, { force: true });
  await symlink(version, tmpLink);
  await rename(tmpLink, join(base, 'current'));
}
