// Installing one package on an endpoint: verify, extract to staging, run the script, switch `current`.
import { spawn } from 'node:child_process';
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, writeSync } from 'node:fs';
import { readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Faults } from '../common/faults.ts';
import type { ArchiveLimits } from '../protocol/archive.ts';
import { parseManifest } from '../protocol/package-file.ts';
import { hashFolder, treeHash } from '../protocol/tree.ts';
import type { JobParams, PackageRef } from '../protocol/types.ts';
import { treeFile } from './attest.ts';
import { extractSafely, UnsafeArchiveError } from './extract.ts';
import { InstallError } from './state.ts';

function run(
  cmd: string,
  args: string[],
  opts: { cwd: string; env: NodeJS.ProcessEnv; timeoutMs: number; label: string },
) {
  return new Promise<void>((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let out = '';
    const keep = (c: Buffer) => (out = (out + c.toString()).slice(-2000));
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        /* already gone */
      }
      reject(
        new InstallError(
          'INSTALL_TIMEOUT',
          `${opts.label} did not finish within ${opts.timeoutMs / 1000}s and was killed`,
        ),
      );
    }, opts.timeoutMs);
    child.on(
      'error',
      (e) => (
        clearTimeout(timer), reject(new InstallError('INSTALL_FAILED', `${opts.label} could not start: ${e.message}`))
      ),
    );
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else
        reject(
          new InstallError(
            'INSTALL_FAILED',
            `${opts.label} exited with ${code ?? signal}${out.trim() ? `: ${out.trim().split('\n').slice(-3).join(' | ')}` : ''}`,
          ),
        );
    });
  });
}

/** Installs a verified archive into <root>/<name>/<version> and points `current` at it. */
export async function installPackage(x: {
  archive: string;
  pkg: PackageRef;
  root: string;
  jobId: string;
  params: JobParams;
  faults: Faults;
  limits?: ArchiveLimits;
  /** Install again even if this version is recorded as installed (its files drifted). */
  again?: boolean;
}) {
  const { pkg } = x;
  const base = join(x.root, pkg.name);
  const target = join(base, pkg.version);
  // Written once the scripts succeeded: an agent killed before it recorded the install only switches
  // `current` on its next try, and does not run the scripts twice.
  const done = join(base, `.installed-${pkg.version}`);
  if (!x.again && existsSync(target) && existsSync(done) && readFileSync(done, 'utf8').trim() === pkg.digest)
    return switchCurrent(base, pkg.version);
  const staging = join(base, `.staging-${pkg.version}-${process.pid}`);
  await rm(staging, { recursive: true, force: true });
  let extracted: Awaited<ReturnType<typeof extractSafely>>;
  try {
    extracted = await extractSafely(x.archive, staging, x.limits);
  } catch (e) {
    await rm(staging, { recursive: true, force: true });
    if (e instanceof UnsafeArchiveError)
      throw new InstallError('UNSAFE_ARCHIVE', `${pkg.name}@${pkg.version}: ${e.message}`);
    throw new InstallError('EXTRACT_FAILED', `${pkg.name}@${pkg.version}: cannot extract: ${(e as Error).message}`);
  }
  // A package refused after extraction leaves no staging folder behind.
  let manifest: ReturnType<typeof parseManifest>;
  try {
    manifest = parseManifest(
      await readFile(join(staging, 'fanout.json'), 'utf8').catch(() => '{}'),
      `${pkg.name}@${pkg.version}`,
    );
  } catch (e) {
    await rm(staging, { recursive: true, force: true });
    throw new InstallError('PACKAGE_INVALID', (e as Error).message);
  }
  if (manifest.name !== pkg.name || manifest.version !== pkg.version) {
    await rm(staging, { recursive: true, force: true });
    throw new InstallError(
      'PACKAGE_INVALID',
      `archive says ${manifest.name}@${manifest.version}, the command says ${pkg.name}@${pkg.version}`,
    );
  }
  // The extracted files against the signed tree, before anything runs: what is kept is what was signed.
  // Read back from the disk (about 1 ms a MB), not taken from the extraction pass: the files that will
  // run are the ones checked, whatever happened on the way to the disk.
  const signed = await hashFolder(staging);
  if (treeHash(signed) !== treeHash(extracted.entries)) {
    await rm(staging, { recursive: true, force: true });
    throw new InstallError('EXTRACT_FAILED', `${pkg.name}@${pkg.version}: the extracted files differ from the archive`);
  }
  if (pkg.tree && treeHash(signed) !== pkg.tree) {
    await rm(staging, { recursive: true, force: true });
    throw new InstallError('TAMPERED', `${pkg.name}@${pkg.version}: the extracted files are not the signed tree`);
  }
  await rm(done, { force: true });
  await rm(target, { recursive: true, force: true });
  await rename(staging, target);
  await writeFile(treeFile(x.root, pkg), JSON.stringify(signed));
  const env = { ...process.env, FANOUT_PACKAGE: pkg.name, FANOUT_VERSION: pkg.version, FANOUT_JOB: x.jobId };
  // Capped at a day: a timer past ~24.8 days would fire at once.
  const timeoutMs = Math.min(86_400_000, 1000 * Number(x.params.timeoutSec ?? manifest.install.timeoutSec ?? 120));
  const injected = x.faults.take('agent.install');
  if (injected?.startsWith('exit:'))
    throw new InstallError('INSTALL_FAILED', `install script exited with ${injected.slice(5)} (injected)`);
  if (x.params.preCommand)
    await run('/bin/sh', ['-c', String(x.params.preCommand)], { cwd: target, env, timeoutMs, label: 'preCommand' });
  if (manifest.install.run) {
    const script = join(target, manifest.install.run);
    if (!script.startsWith(target + '/') || !existsSync(script))
      throw new InstallError('PACKAGE_INVALID', `install.run "${manifest.install.run}" is not a file in the package`);
    await run('/bin/sh', [script], { cwd: target, env, timeoutMs, label: `install script ${manifest.install.run}` });
  }
  if (x.params.postCommand)
    await run('/bin/sh', ['-c', String(x.params.postCommand)], { cwd: target, env, timeoutMs, label: 'postCommand' });
  const fd = openSync(done, 'w');
  writeSync(fd, `${pkg.digest}\n`);
  fsyncSync(fd);
  closeSync(fd);
  await switchCurrent(base, pkg.version);
}

/** Atomic switch: a new link beside `current`, renamed over it. */
export async function switchCurrent(base: string, version: string) {
  const tmpLink = join(base, `.current-${process.pid}`);
  await rm(tmpLink, { force: true });
  await symlink(version, tmpLink);
  await rename(tmpLink, join(base, 'current'));
}

/** Runs a package's script with /bin/sh in its folder (the uninstall script too). */
export function runScript(
  script: string,
  opts: { cwd: string; env: NodeJS.ProcessEnv; timeoutMs: number; label: string },
) {
  return run('/bin/sh', [script], opts);
}
