// Writes the entries of an archive being inspected (archive.ts) into a new folder, in the same pass:
// only entries that passed the archive rules reach it, with exactly their signed permission bits.

import { createWriteStream, mkdirSync } from 'node:fs';
import { chmod, mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { ReadEntry } from 'tar';

export class EntryWriter {
  private writes: Promise<void>[] = [];
  private folders = new Map<string, number>();
  private failure?: Error;

  constructor(private readonly root: string) {
    mkdirSync(root, { recursive: true });
  }

  folder(path: string, mode: number) {
    if (path && path !== '.') this.folders.set(path, mode & 0o777);
  }

  file(path: string, mode: number, body: ReadEntry) {
    const dest = join(this.root, path);
    try {
      mkdirSync(dirname(dest), { recursive: true });
    } catch (e) {
      this.failure ??= e as Error;
      return void body.resume();
    }
    // 'wx': a path that appears twice is refused by the rules, and is never written over.
    const out = createWriteStream(dest, { flags: 'wx', mode: 0o600 });
    body.pipe(out);
    this.writes.push(
      new Promise<void>((resolve, reject) => {
        out.once('close', resolve);
        out.once('error', reject);
      })
        .then(() => chmod(dest, mode & 0o777))
        .catch((e) => {
          this.failure ??= e as Error;
          body.unpipe(out);
          body.resume();
        }),
    );
  }

  /** Every file written and every folder given its mode (folders last: a read-only one stays writable until then). */
  async done() {
    await Promise.all(this.writes);
    if (this.failure) throw this.failure;
    for (const [path, mode] of [...this.folders].sort((a, b) => b[0].length - a[0].length)) {
      await mkdir(join(this.root, path), { recursive: true });
      await chmod(join(this.root, path), mode);
    }
  }
}
