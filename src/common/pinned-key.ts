// The master's key as a relay or agent keeps it in DATA: master.pub (pinned at the first enrollment,
// never rewritten) and master.keys.json (the current key and the rotations that lead to it).
import { existsSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fingerprint, KeyChangedError, type Rotation, trustedKeys } from '../protocol/keys.ts';

/** What a relay or agent knows of the master's key, kept in DATA: master.pub (pinned) and master.keys.json. */
export class PinnedKey {
  /** Keys this device trusts: the pinned one and those its rotations lead to. */
  keys: string[] = [];
  current = '';
  rotations: Rotation[] = [];

  constructor(
    private readonly dataDir: string,
    /** `--master-key SHA256:…`: the only key a first enrollment may pin. */
    private readonly expected?: string,
  ) {
    const kept = join(dataDir, 'master.keys.json');
    if (existsSync(kept) && this.pinned) {
      const k = JSON.parse(readFileSync(kept, 'utf8')) as { current: string; rotations: Rotation[] };
      this.keys = trustedKeys(this.pinned, k.current, k.rotations);
      this.current = k.current;
      this.rotations = k.rotations;
    } else if (this.pinned) {
      this.keys = [this.pinned];
      this.current = this.pinned;
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
      await writeFile(join(this.dataDir, 'master.pub'), current, { mode: 0o644 });
      pinned = current;
    }
    const keys = trustedKeys(pinned, current, rotations);
    if (current !== this.current || rotations.length !== this.rotations.length)
      await writeFile(join(this.dataDir, 'master.keys.json'), JSON.stringify({ current, rotations }));
    this.keys = keys;
    this.current = current;
    this.rotations = rotations;
  }
}
