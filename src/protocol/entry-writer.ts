// Writes the entries of an archive being inspected (archive.ts) into a new folder, in the same pass:
// only entries that passed the archive rules reach it, with exactly their signed permission bits.
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import { chmod, mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';

/** Where one entry's bytes go: `write` returns false when the caller should wait for `drain`. */
export interface EntrySink {
  write(chunk: Buffer): boolean;
  once(event: 'drain', fn: () => void): void;
  end(): void;
}

export class EntryWriter {
  private writes: Promise<void>[] = [];
  private open = new Set<WriteStream>();
  private folders = new Map<string, number>();
  private failure?: Error;

  constructor(private readonly root: string) {
    mkdirSync(root, { recursive: true });
  }

  folder(path: string, mode: number) {
    if (path && path !== '.') this.folders.set(path, mode & 0o777);
  }

  /** A sink for one file's bytes; after a write error it takes (and drops) the rest without waiting. */
  file(path: string, mode: number): EntrySink {
    const dest = join(this.root, path);
    const dropped: EntrySink = { write: () => true, once: () => undefined, end: () => undefined };
    try {
      mkdirSync(dirname(dest), { recursive: true });
    } catch (e) {
      this.failure ??= e as Error;
      return dropped;
    }
    // 'wx': a path that appears twice is refused by the rules, and is never written over.
    const out = createWriteStream(dest, { flags: 'wx', mode: 0o600 });
    this.open.add(out);
    out.once('close', () => this.open.delete(out));
    let dead = false;
    this.writes.push(
      new Promise<void>((resolve) => {
        out.on('error', (e) => {
          this.failure ??= e;
          dead = true;
          out.emit('drain'); // a paused entry resumes, and its rest is dropped
          resolve();
        });
        out.once('close', () => resolve());
      }).then(() => (dead ? undefined : chmod(dest, mode & 0o777))),
    );
    return {
      write: (chunk) => dead || out.write(chunk),
      once: (_event, fn) => void out.once('drain', fn),
      end: () => void (dead || out.end()),
    };
  }

  /** The archive broke off: files still being written are closed (their entries never end). */
  async abort() {
    for (const out of this.open) out.destroy();
    await Promise.allSettled(this.writes);
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
