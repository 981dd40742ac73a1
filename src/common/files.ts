import { closeSync, existsSync, fsyncSync, openSync, writeSync } from 'node:fs';
import { chmod, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';

/**
 * Makes a folder and the parents it lacks, or says plainly why it cannot. Node's own `recursive`
 * loops forever where a parent exists but takes no new entries (`/proc/x`), so a mistyped `--data`
 * would hang the process at start.
 */
export async function makeFolder(path: string, mode?: number) {
  const missing: string[] = [];
  for (let p = resolve(path); ; p = dirname(p)) {
    const found = await stat(p).catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT' || e.code === 'ENOTDIR') return undefined;
      throw new Error(`cannot make the folder ${path}: ${p} cannot be read (${e.code})`);
    });
    if (found && !found.isDirectory()) throw new Error(`cannot make the folder ${path}: ${p} is a file, not a folder`);
    if (found || dirname(p) === p) break;
    missing.unshift(p);
  }
  for (const dir of missing)
    await mkdir(dir, { mode }).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'EEXIST')
        throw new Error(`cannot make the folder ${path}: ${dirname(dir)} takes no new folder (${e.code})`);
    });
}

/** A secret kept in a file (tokens, keys): read it, or make it on first start with mode 0600. */
export async function readOrCreateSecret(path: string, make: () => string) {
  if (existsSync(path)) return (await readFile(path, 'utf8')).trim();
  const v = make();
  await writeFile(path, v + '\n', { mode: 0o600 });
  await chmod(path, 0o600);
  return v;
}

/** Writes a small file and waits until it is on disk (markers a crash must not lose). */
export function writeDurably(file: string, text: string) {
  const fd = openSync(file, 'w');
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
