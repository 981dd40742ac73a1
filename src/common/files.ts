import { closeSync, existsSync, fsyncSync, openSync, writeSync } from 'node:fs';
import { chmod, readFile, writeFile } from 'node:fs/promises';

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
