// The master's signing key (DATA/signing.key, or a shared --signing-key file) and its rotations.
import { existsSync, readFileSync } from 'node:fs';
import { chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readOrCreateSecret } from '../common/files.ts';
import { generateSigningKey } from '../protocol/crypto.ts';
import { fingerprint, type Rotation, rotationStatement } from '../protocol/keys.ts';

interface KeyPair {
  privatePem: string;
  publicPem: string;
}

export class MasterKeys {
  private constructor(
    private readonly keyFile: string,
    private readonly rotationsFile: string,
    private pair: KeyPair,
    private chain: Rotation[],
  ) {}

  static async load(data: string, keyFile = join(data, 'signing.key')) {
    const pair = JSON.parse(await readOrCreateSecret(keyFile, () => JSON.stringify(generateSigningKey()))) as KeyPair;
    const rotationsFile = `${keyFile}.rotations.json`;
    const chain = existsSync(rotationsFile) ? (JSON.parse(readFileSync(rotationsFile, 'utf8')) as Rotation[]) : [];
    return new MasterKeys(keyFile, rotationsFile, pair, chain);
  }

  get privatePem() {
    return this.pair.privatePem;
  }
  get publicPem() {
    return this.pair.publicPem;
  }
  get fingerprint() {
    return fingerprint(this.pair.publicPem);
  }
  /** Every rotation so far, oldest first: a device that pinned any earlier key can follow them. */
  get rotations(): readonly Rotation[] {
    return this.chain;
  }

  /** A new key, vouched for by the old one; what the old key signed stays valid for those who follow. */
  async rotate() {
    const next = generateSigningKey();
    const statement = rotationStatement(this.pair.privatePem, this.pair.publicPem, next.publicPem);
    this.chain = [...this.chain, statement];
    await writeFile(this.rotationsFile, JSON.stringify(this.chain, null, 2), { mode: 0o600 });
    await writeFile(this.keyFile, `${JSON.stringify(next)}\n`, { mode: 0o600 });
    await chmod(this.keyFile, 0o600);
    this.pair = next;
    return { fingerprint: this.fingerprint, previous: statement.statement.previous };
  }
}
