// The master's key as a relay or agent keeps it in DATA: master.pub (pinned at the first enrollment,
// never rewritten) and master.keys.json (the current key and the rotations that lead to it).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fingerprint, KeyChangedError, type Rotation, trustedKeys } from '../protocol/keys.ts';
import { replaceFile } from './files.ts';

/**
 * What `check` says with the keys held; when it fails, what it says after `reread` (the enrollment
 * again: the master's key may have been rotated since), if that brought a key not held before.
 */
export async function checkedWithReread<T>(
  keys: () => readonly string[],
  check: (keys: readonly string[]) => T,
  failed: (result: T) => boolean,
  reread: () => Promise<unknown>,
): Promise<T> {
  const first = check(keys());
  if (!failed(first)) return first;
  const known = keys().length;
  await reread();
  return keys().length > known ? check(keys()) : first;
}

/** What a relay or agent knows of the master's key, kept in DATA: master.pub (pinned) and master.keys.json. */
export class PinnedKey {
  /** Keys this device trusts: the pinned one and those its rotations lead to. */
  keys: string[] = [];
  current = '';
  rotations: Rotation[] = [];
  /** Why master.keys.json was set aside at start, if it was: to be logged. */
  readonly notice?: string;

  constructor(
    private readonly dataDir: string,
    /** `--master-key SHA256:…`: the only key a first enrollment may pin. */
    private readonly expected?: string,
  ) {
    const pinned = this.pinned;
    if (!pinned) return;
    this.keys = [pinned];
    this.current = pinned;
    const kept = join(dataDir, 'master.keys.json');
    if (!existsSync(kept)) return;
    try {
      const k = JSON.parse(readFileSync(kept, 'utf8')) as { current: string; rotations: Rotation[] };
      this.keys = trustedKeys(pinned, k.current, k.rotations);
      this.current = k.current;
      this.rotations = k.rotations;
    } catch (e) {
      // Only a cache of what the pinned key vouched for: the next enrollment brings the rotations again.
      this.notice = `${kept} cannot be used (${(e as Error).message}); trusting the pinned key until the next enrollment`;
    }
  }

  private get pinned(): string | undefined {
    const f = join(this.dataDir, 'master.pub');
    return existsSync(f) ? readFileSync(f, 'utf8') : undefined;
  }

  /** Takes what the master (or the relay) offers, or throws KeyChangedError. */
  async accept(current: string, rotations: Rotation[] = []) {
    let pinned = this.pinned;
    if (!pinned) {
      if (this.expected && fingerprint(current) !== this.expected)
        throw new KeyChangedError(
          `the master's key is ${fingerprint(current)}, not ${this.expected} as --master-key says; refusing it`,
        );
      await replaceFile(join(this.dataDir, 'master.pub'), current);
      pinned = current;
    }
    // A master or relay that has not heard of the latest rotation yet does not take its key back.
    const behind =
      rotations.length < this.rotations.length &&
      rotations.every((r, i) => r.signature === this.rotations[i]?.signature) &&
      this.keys.some((k) => fingerprint(k) === fingerprint(current));
    if (behind) return;
    const keys = trustedKeys(pinned, current, rotations);
    if (current !== this.current || rotations.length !== this.rotations.length)
      await replaceFile(join(this.dataDir, 'master.keys.json'), JSON.stringify({ current, rotations }));
    this.keys = keys;
    this.current = current;
    this.rotations = rotations;
  }
}
