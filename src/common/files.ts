import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, openSync, writeSync } from 'node:fs';
import { mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises';
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
  await replaceFile(path, v + '\n', 0o600);
  return v;
}

/**
 * Replaces a file whole, or leaves it as it was: a kill or power cut mid-write must not leave half
 * a key behind (written beside it, synced, renamed over it, and the rename synced).
 */
export async function replaceFile(file: string, text: string, mode = 0o644) {
  // Its own name each time: two writers at once, in this process or on another host sharing the
  // folder (a key file on a shared mount; PIDs repeat across containers), must not write into one.
  const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    const fh = await open(tmp, 'w', mode);
    try {
      await fh.writeFile(text);
      await fh.chmod(mode);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
  } catch (e) {
    // A full disk, say: nothing half-written stays behind, and the file is as it was.
    await rm(tmp, { force: true });
    throw e;
  }
  const dir = await open(dirname(file), 'r');
  await dir.sync().finally(() => dir.close());
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
