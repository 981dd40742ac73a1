// A relay's hot content kept in memory while endpoints fetch it. Sent from a file, each byte is copied
// twice (page cache → buffer → socket): on one machine that made a relay serving 100 × 50 MB cost
// 2.8-3.2 s of CPU and take 1.5-1.6× nginx's time; sent from memory, 1.0-1.2 s and 0.94-1.05×
// (issue 14). A file is read once, when its first download starts, and dropped once idle.
import { readFile } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';

const SLICE = 1024 * 1024;

interface Entry {
  bytes: Promise<Buffer>;
  size: number;
  used: number;
}

export class ContentCache {
  /** Least recently used first. */
  private readonly entries = new Map<string, Entry>();
  private total = 0;

  constructor(
    /** The most memory held; a file over half of it is always sent from the disk. */
    readonly budget = 128 * 1024 * 1024,
    /** A file nobody fetched for this long is dropped. */
    readonly idleMs = 60_000,
  ) {
    setInterval(() => this.evict(0), idleMs).unref();
  }

  /** The bytes of the file at `path` as it is now (`version`), or undefined when it is not kept. */
  get(path: string, version: string, size: number): Promise<Buffer> | undefined {
    if (size > this.budget / 2) return undefined;
    const key = `${path}\0${version}`;
    let e = this.entries.get(key);
    if (e) this.entries.delete(key);
    else {
      this.evict(size);
      const bytes = readFile(path).then((b) => {
        if (b.length !== size) throw new Error(`${path} changed while it was read (${b.length} of ${size} bytes)`);
        return b;
      });
      e = { bytes, size, used: 0 };
      this.total += size;
      bytes.catch(() => this.drop(key, e!));
    }
    e.used = Date.now();
    this.entries.set(key, e);
    return e.bytes;
  }

  /** Bytes held now. */
  get held() {
    return this.total;
  }

  /** Drops what is idle, then the least recently used until `room` more bytes fit. */
  private evict(room: number) {
    const now = Date.now();
    for (const [key, e] of this.entries)
      if (now - e.used >= this.idleMs || this.total + room > this.budget) this.drop(key, e);
  }

  private drop(key: string, e: Entry) {
    if (this.entries.get(key) !== e) return;
    this.entries.delete(key);
    this.total -= e.size;
  }
}

/**
 * A sender of bytes start..end of `bytes`, in slices, each when the socket has taken the last (the
 * cached buffer is shared: nothing is copied in this process). Waits for the bytes before it returns.
 */
export async function fromMemory(bytes: Promise<Buffer>, start: number, end: number) {
  const all = await bytes;
  return async (res: ServerResponse | undefined, onBytes?: (n: number) => void) => {
    if (!res) return;
    let failed: Error | undefined;
    res.once('error', (e) => (failed ??= e));
    const ended = new Promise<void>((resolve) => res.once('close', resolve));
    for (let at = start; at <= end && !res.destroyed; at += SLICE) {
      const out = all.subarray(at, Math.min(end + 1, at + SLICE));
      onBytes?.(out.length);
      if (!res.write(out)) await Promise.race([new Promise((r) => res.once('drain', r)), ended]);
      if (failed) throw failed;
    }
    if (!res.destroyed) res.end();
  };
}
