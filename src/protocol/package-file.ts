import { existsSync } from 'node:fs';
import { lstat, readdir, readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import * as tar from 'tar';
import { type ArchiveLimits, ArchiveRefused, DEFAULT_LIMITS, inspectArchive } from './archive.ts';
import { sha256File } from './digest.ts';
import { FanoutError } from './errors.ts';
import type { TreeEntry } from './tree.ts';

/** fanout.json. Checked by hand rather than by a schema library: agents read it, and stay small. */
export interface Manifest {
  name: string;
  version: string;
  install: { run?: string; timeoutSec?: number };
  /** Run from the current version's folder by an uninstall job, before the package is removed. */
  uninstall: { run?: string; timeoutSec?: number };
  description?: string;
}

const NAME = /^[a-z0-9][a-z0-9._-]*$/;
const VERSION = /^[0-9A-Za-z][0-9A-Za-z.+_-]*$/;

function manifestProblems(m: unknown): string[] {
  if (!m || typeof m !== 'object' || Array.isArray(m)) return ['fanout.json must hold an object'];
  const o = m as Record<string, unknown>;
  const out: string[] = [];
  if (typeof o.name !== 'string') out.push('name: a string is required');
  else if (!NAME.test(o.name)) out.push('name: package names are lower-case letters, digits, dot, dash, underscore');
  if (typeof o.version !== 'string') out.push('version: a string is required');
  else if (!VERSION.test(o.version)) out.push('version: versions are letters, digits, dot, plus, dash, underscore');
  for (const step of ['install', 'uninstall'] as const) {
    const v = o[step];
    if (v === undefined) continue;
    if (!v || typeof v !== 'object' || Array.isArray(v)) {
      out.push(`${step}: an object {run, timeoutSec} is expected`);
      continue;
    }
    const { run, timeoutSec } = v as Record<string, unknown>;
    if (run !== undefined && typeof run !== 'string') out.push(`${step}.run: a string is expected`);
    if (timeoutSec !== undefined && !(typeof timeoutSec === 'number' && timeoutSec > 0))
      out.push(`${step}.timeoutSec: a positive number of seconds is expected`);
  }
  if (o.description !== undefined && typeof o.description !== 'string') out.push('description: a string is expected');
  return out;
}

export function parseManifest(text: string, where: string): Manifest {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new FanoutError('FANOUT_ERR_PACKAGE_INVALID', {
      where,
      problem: `fanout.json is not JSON: ${(e as Error).message}`,
    });
  }
  const problems = manifestProblems(raw);
  if (problems.length)
    throw new FanoutError('FANOUT_ERR_PACKAGE_INVALID', {
      where,
      problem: `fanout.json is invalid: ${problems.join('; ')}`,
    });
  const m = raw as Manifest;
  const step = (x?: { run?: string; timeoutSec?: number }) => ({
    ...(x?.run !== undefined ? { run: x.run } : {}),
    ...(x?.timeoutSec !== undefined ? { timeoutSec: x.timeoutSec } : {}),
  });
  return {
    name: m.name,
    version: m.version,
    install: step(m.install),
    uninstall: step(m.uninstall),
    ...(m.description !== undefined ? { description: m.description } : {}),
  };
}

/** Checks a package archive against the archive rules; its fanout.json and its tree of files. */
export async function inspectPackage(
  source: string,
  limits: ArchiveLimits = DEFAULT_LIMITS,
  label?: string,
): Promise<{ manifest: Manifest; entries: TreeEntry[] }> {
  const where = label ?? source;
  let found: Awaited<ReturnType<typeof inspectArchive>>;
  try {
    found = await inspectArchive(source, limits);
  } catch (e) {
    if (e instanceof ArchiveRefused)
      throw new FanoutError('FANOUT_ERR_PACKAGE_INVALID', { where, problem: e.message }, e.problems);
    throw e;
  }
  if (found.manifest === undefined)
    throw new FanoutError('FANOUT_ERR_PACKAGE_INVALID', {
      where,
      problem: 'no fanout.json at the root of the archive',
    });
  return { manifest: parseManifest(found.manifest, where), entries: found.entries };
}

/** What `package build` refuses before packing: the same rules as the archive's, named by path. */
async function folderProblems(dir: string, rel = ''): Promise<string[]> {
  const out: string[] = [];
  for (const name of (await readdir(join(dir, rel))).sort()) {
    const path = rel ? `${rel}/${name}` : name;
    const st = await lstat(join(dir, path));
    if (st.isSymbolicLink()) out.push(`"${path}" is a symbolic link, which packages may not hold`);
    else if (st.isDirectory()) out.push(...(await folderProblems(dir, path)));
    else if (!st.isFile()) out.push(`"${path}" is not a file or folder (a device, FIFO or socket)`);
    else if (st.nlink > 1)
      out.push(`"${path}" is a hard link (${st.nlink} names), which packages may not hold; copy it instead`);
    else if (st.mode & 0o7000)
      out.push(`"${path}" has a setuid, setgid or sticky mode (${(st.mode & 0o7777).toString(8)})`);
    else if (st.mode & 0o002) out.push(`"${path}" is world-writable (${(st.mode & 0o777).toString(8)}); chmod o-w it`);
  }
  return out;
}

/**
 * Packs a folder holding fanout.json into a .tgz (`fanout package build`): `output`, by default
 * NAME-VERSION.tgz in the working folder.
 */
export async function buildPackage(dir: string, output?: string) {
  const mfile = join(dir, 'fanout.json');
  if (!existsSync(mfile))
    throw new FanoutError('FANOUT_ERR_PACKAGE_INVALID', {
      where: dir,
      problem: existsSync(dir) ? 'no fanout.json in the folder' : 'no such folder',
    });
  const m = parseManifest(await readFile(mfile, 'utf8'), mfile);
  const file = output ?? `${m.name}-${m.version}.tgz`;
  if (m.install.run && !existsSync(join(dir, m.install.run)))
    throw new FanoutError('FANOUT_ERR_PACKAGE_INVALID', {
      where: dir,
      problem: `install.run "${m.install.run}" is not a file in the folder`,
    });
  const problems = await folderProblems(dir);
  if (problems.length)
    throw new FanoutError('FANOUT_ERR_PACKAGE_INVALID', { where: dir, problem: problems.join('; ') }, problems);
  const entries = (await readdir(dir)).sort();
  await tar.c({ gzip: true, cwd: dir, file, portable: true, noMtime: true }, entries);
  await inspectPackage(file, DEFAULT_LIMITS, file);
  return {
    name: m.name,
    version: m.version,
    file: resolve(file),
    digest: await sha256File(file),
    size: (await stat(file)).size,
  };
}
