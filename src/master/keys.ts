// The master's signing key (DATA/signing.key, or --signing-key FILE) and its rotations. The database
// every master shares keeps the rotations (the truth); the key's folder keeps a copy beside it
// (KEY.rotations.json). A rotation is written so that no kill leaves the two disagreeing. A master
// with a copy of the key that another master rotated still serves the rotation: devices follow it,
// and what this master signs with the older key stays valid for them (DESIGN §12).
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Kysely } from 'kysely';
import { readOrCreateSecret, replaceFile } from '../common/files.ts';
import { generateSigningKey } from '../protocol/crypto.ts';
import { FanoutError } from '../protocol/errors.ts';
import { fingerprint, type Rotation, rotationStatement } from '../protocol/keys.ts';
import type { Database } from '../store/schema.ts';
import { type KeyPair, keptChain, parsePair, rotationsFileOf } from './key-files.ts';

const stamp = (file: string) => {
  const s = statSync(file, { throwIfNoEntry: false });
  return s ? `${s.mtimeMs}:${s.size}:${s.ino}` : '';
};
/** New keys written beside the key before their rotation was kept (KEY.next-RANDOM). */
const pendingKeys = (keyFile: string) =>
  readdirSync(dirname(keyFile))
    .filter((f) => f.startsWith(`${basename(keyFile)}.next`) && !f.endsWith('.tmp'))
    .map((f) => join(dirname(keyFile), f));
/** A rotation takes milliseconds; a new key without its rotation for longer was left by a kill. */
const ROTATING_MS = 60_000;
/** Every rotation the masters keep, oldest first; a row that is not one is named, with its mend. */
const rotationsIn = async (db: Kysely<Database>, keyFile: string): Promise<Rotation[]> =>
  (await db.selectFrom('key_rotations').select(['seq', 'statement']).orderBy('seq').execute()).map((r) => {
    let v: Partial<Rotation> | undefined;
    try {
      v = JSON.parse(r.statement);
    } catch {}
    const st = v?.statement;
    if (st?.type === 'fanout-key-rotation' && typeof st.next === 'string' && typeof v?.signature === 'string')
      return v as Rotation;
    throw new FanoutError('FANOUT_ERR_INTERNAL', {
      detail: `key rotation ${r.seq} in the database (table key_rotations) is not a rotation statement; ${rotationsFileOf(keyFile)} beside the signing key keeps a copy of every rotation this master made or took up: put the row back from it`,
    });
  });

export class MasterKeys {
  private constructor(
    private readonly db: Kysely<Database>,
    private readonly keyFile: string,
    private pair: KeyPair,
    private seen: string,
    /** What was mended at start, to be logged. */
    readonly notices: string[],
  ) {}

  private get rotationsFile() {
    return rotationsFileOf(this.keyFile);
  }

  static async load(db: Kysely<Database>, data: string, keyFile = join(data, 'signing.key')) {
    const notices: string[] = [];
    let pair = parsePair(await readOrCreateSecret(keyFile, () => JSON.stringify(generateSigningKey())), keyFile);
    const kept = await keptChain(keyFile, pair, notices);
    // Rotations kept only beside the key (before the database kept them): the database has them now.
    if (kept.length)
      await db
        .insertInto('key_rotations')
        .values(kept.map((r, i) => ({ seq: i + 1, statement: JSON.stringify(r) })))
        .onConflict((oc) => oc.column('seq').doNothing())
        .execute();
    const chain = await rotationsIn(db, keyFile);
    // Killed in a rotation after its new key was written: finished if the rotation was kept, else dropped.
    for (const file of pendingKeys(keyFile)) {
      const next = parsePair(readFileSync(file, 'utf8'), file);
      const last = chain.at(-1)?.statement;
      if (last?.next === next.publicPem && last.previous === fingerprint(pair.publicPem)) {
        await replaceFile(rotationsFileOf(keyFile), JSON.stringify(chain, null, 2), 0o600);
        await rename(file, keyFile);
        pair = next;
        notices.push(`finished the key rotation to ${fingerprint(next.publicPem)} that was cut short`);
      } else if (Date.now() - statSync(file).mtimeMs > ROTATING_MS) await rm(file, { force: true });
      // Younger: another master on this key file may be between its new key and its rotation.
      else notices.push(`left ${basename(file)}, written in the last minute: another master may be rotating the key`);
    }
    return new MasterKeys(db, keyFile, pair, stamp(keyFile), notices);
  }

  /** Another master on the same key file rotated it: taken up before this one signs again (a stat, µs). */
  private fresh() {
    const seen = stamp(this.keyFile);
    if (seen === this.seen || !seen) return;
    try {
      this.pair = parsePair(readFileSync(this.keyFile, 'utf8'), this.keyFile);
      this.seen = seen;
    } catch {
      // Half-read while it was replaced: next time.
    }
  }

  /** The key this master signs with. */
  get privatePem() {
    this.fresh();
    return this.pair.privatePem;
  }
  get publicPem() {
    this.fresh();
    return this.pair.publicPem;
  }
  /** Every key this master has signed with, as its key file records them: earlier ones, then this one. */
  get ownKeys(): readonly string[] {
    this.fresh();
    return [...(this.pair.retired ?? []), this.pair.publicPem];
  }
  get fingerprint() {
    return fingerprint(this.publicPem);
  }

  /** Every rotation so far, by any master, oldest first: a device that pinned any earlier key follows them. */
  rotations() {
    return rotationsIn(this.db, this.keyFile);
  }

  /** A new key, vouched for by the old one; what the old key signed stays valid for those who follow. */
  async rotate() {
    this.fresh(); // from the latest key, if another master on this file rotated it
    const chain = await this.rotations();
    const latest = chain.at(-1)?.statement.next;
    if (latest && latest !== this.pair.publicPem)
      throw new FanoutError('FANOUT_ERR_KEY_NOT_LATEST', {
        fingerprint: this.fingerprint,
        latest: fingerprint(latest),
      });
    const next = { ...generateSigningKey(), retired: [...(this.pair.retired ?? []), this.pair.publicPem] };
    const statement = rotationStatement(this.pair.privatePem, this.pair.publicPem, next.publicPem);
    // The new key first (beside the old), then the rotation in the database (the point of no
    // return), then its copy beside the key, then the swap.
    const pending = `${this.keyFile}.next-${randomBytes(6).toString('hex')}`;
    await replaceFile(pending, `${JSON.stringify(next)}\n`, 0o600);
    try {
      await this.db
        .insertInto('key_rotations')
        .values({ seq: chain.length + 1, statement: JSON.stringify(statement) })
        .execute();
    } catch (e) {
      await rm(pending, { force: true });
      if ((await this.rotations()).length > chain.length)
        throw new FanoutError('FANOUT_ERR_KEY_NOT_LATEST', { fingerprint: this.fingerprint, latest: 'another key' });
      throw e;
    }
    await replaceFile(this.rotationsFile, JSON.stringify([...chain, statement], null, 2), 0o600);
    await rename(pending, this.keyFile).catch((e) => {
      // A master starting on this key file just now finished the rotation for us.
      if (
        e.code !== 'ENOENT' ||
        parsePair(readFileSync(this.keyFile, 'utf8'), this.keyFile).publicPem !== next.publicPem
      )
        throw e;
    });
    this.pair = next;
    this.seen = stamp(this.keyFile);
    return { fingerprint: this.fingerprint, previous: statement.statement.previous };
  }
}
