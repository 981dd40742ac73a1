// The master's signing key (DATA/signing.key, or a shared --signing-key file) and its rotations
// (beside it, KEY.rotations.json). A rotation is written so that no kill leaves the two disagreeing,
// and a master sharing the file with others takes up another's rotation at once.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { readOrCreateSecret, replaceFile } from '../common/files.ts';
import { generateSigningKey } from '../protocol/crypto.ts';
import { fingerprint, type Rotation, rotationStatement } from '../protocol/keys.ts';

interface KeyPair {
  privatePem: string;
  publicPem: string;
}

const parsePair = (text: string, file: string): KeyPair => {
  try {
    const p = JSON.parse(text) as KeyPair;
    if (typeof p.privatePem === 'string' && typeof p.publicPem === 'string') return p;
  } catch {}
  throw new Error(`${file} is not a Fanout signing key (JSON with privatePem and publicPem)`);
};
const readChain = (file: string): Rotation[] => {
  if (!existsSync(file)) return [];
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`${file} is not a list of key rotations: ${(e as Error).message}`);
  }
};
const leadsTo = (chain: Rotation[], pair: KeyPair) => !chain.length || chain.at(-1)?.statement.next === pair.publicPem;
const stamp = (file: string) => {
  const s = statSync(file, { throwIfNoEntry: false });
  return s ? `${s.mtimeMs}:${s.size}:${s.ino}` : '';
};

export class MasterKeys {
  private constructor(
    private readonly keyFile: string,
    private readonly rotationsFile: string,
    private pair: KeyPair,
    private chain: Rotation[],
    private seen: string,
    /** What was mended at start, to be logged. */
    readonly notice?: string,
  ) {}

  static async load(data: string, keyFile = join(data, 'signing.key')) {
    const rotationsFile = `${keyFile}.rotations.json`;
    const next = `${keyFile}.next`;
    let notice: string | undefined;
    // Killed in a rotation: the new key was kept before the rotation was; finished if the rotation was.
    if (existsSync(next)) {
      const pending = parsePair(readFileSync(next, 'utf8'), next);
      if (readChain(rotationsFile).at(-1)?.statement.next === pending.publicPem) {
        await rename(next, keyFile);
        notice = `finished the key rotation to ${fingerprint(pending.publicPem)} that was cut short`;
      } else await rm(next);
    }
    const pair = parsePair(await readOrCreateSecret(keyFile, () => JSON.stringify(generateSigningKey())), keyFile);
    let chain = readChain(rotationsFile);
    // A rotation kept without its key (cut short by a version before this one): nobody holds that
    // key, and a rotation after it would not chain. Devices re-read the chain from their pinned key.
    const cut = chain.findIndex((r) => r.statement.previous === fingerprint(pair.publicPem));
    if (!leadsTo(chain, pair) && cut >= 0) {
      notice = `dropped ${chain.length - cut} rotation(s) to a key that was never kept`;
      chain = chain.slice(0, cut);
      await replaceFile(rotationsFile, JSON.stringify(chain, null, 2), 0o600);
    }
    return new MasterKeys(keyFile, rotationsFile, pair, chain, stamp(keyFile), notice);
  }

  /**
   * Another master on the same key file rotated it: taken up before this one signs or answers again
   * (a stat each time, a few µs), or a relay enrolled here would refuse what the other signed.
   */
  private fresh() {
    const seen = stamp(this.keyFile);
    if (seen === this.seen || !seen) return;
    try {
      const pair = parsePair(readFileSync(this.keyFile, 'utf8'), this.keyFile);
      const chain = readChain(this.rotationsFile);
      if (!leadsTo(chain, pair)) return; // between the two writes of a rotation: next time
      this.pair = pair;
      this.chain = chain;
      this.seen = seen;
    } catch {
      // Half-read while another master replaced it: next time.
    }
  }

  get privatePem() {
    this.fresh();
    return this.pair.privatePem;
  }
  get publicPem() {
    this.fresh();
    return this.pair.publicPem;
  }
  get fingerprint() {
    return fingerprint(this.publicPem);
  }
  /** Every rotation so far, oldest first: a device that pinned any earlier key can follow them. */
  get rotations(): readonly Rotation[] {
    this.fresh();
    return this.chain;
  }

  /** A new key, vouched for by the old one; what the old key signed stays valid for those who follow. */
  async rotate() {
    this.fresh(); // from the latest key, if another master rotated it
    const next = generateSigningKey();
    const statement = rotationStatement(this.pair.privatePem, this.pair.publicPem, next.publicPem);
    const chain = [...this.chain, statement];
    // The new key first (beside the old), then the rotation (the point of no return), then the swap.
    await replaceFile(`${this.keyFile}.next`, `${JSON.stringify(next)}\n`, 0o600);
    await replaceFile(this.rotationsFile, JSON.stringify(chain, null, 2), 0o600);
    await rename(`${this.keyFile}.next`, this.keyFile);
    this.pair = next;
    this.chain = chain;
    this.seen = stamp(this.keyFile);
    return { fingerprint: this.fingerprint, previous: statement.statement.previous };
  }
}
