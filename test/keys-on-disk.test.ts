// The master's key on disk, on the master and on the devices that pinned it: a kill in the middle of
// a write, or a rotation on another master (sharing the key file, or with a copy of its own), leaves
// keys the fleet still follows.
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { replaceFile } from '../src/common/files.ts';
import { PinnedKey } from '../src/common/pinned-key.ts';
import { MasterKeys } from '../src/master/keys.ts';
import { generateSigningKey } from '../src/protocol/crypto.ts';
import { type Rotation, rotationStatement, trustedKeys } from '../src/protocol/keys.ts';
import { openStore } from '../src/store/index.ts';
import { tempDir } from './helpers.ts';

const [k0, k1, k2] = [generateSigningKey(), generateSigningKey(), generateSigningKey()];
const r1 = rotationStatement(k0.privatePem, k0.publicPem, k1.publicPem);
const r2 = rotationStatement(k1.privatePem, k1.publicPem, k2.publicPem);
const json = (v: unknown) => `${JSON.stringify(v)}\n`;
/** A master's data folder as a kill left it. */
const masterData = (files: { key: object; rotations?: object[]; next?: object; young?: boolean }) => {
  const dir = tempDir('keys');
  writeFileSync(join(dir, 'signing.key'), json(files.key), { mode: 0o600 });
  if (files.rotations) writeFileSync(join(dir, 'signing.key.rotations.json'), json(files.rotations));
  if (files.next) {
    const next = join(dir, 'signing.key.next-4242');
    writeFileSync(next, json(files.next));
    // Written at the kill, not just now (a master rotating now leaves its new key this young).
    if (!files.young) utimesSync(next, new Date(Date.now() - 120_000), new Date(Date.now() - 120_000));
  }
  return dir;
};
/** The masters' database (in a folder of its own), holding these rotations. */
const database = async (chain: Rotation[] = []) => {
  const { db } = await openStore(join(tempDir('keys-db'), 'master.db'));
  for (const [i, r] of chain.entries())
    await db
      .insertInto('key_rotations')
      .values({ seq: i + 1, statement: JSON.stringify(r) })
      .execute();
  return db;
};
/** What a device that pinned k0 makes of what this master offers. */
const deviceTrusts = async (keys: MasterKeys) => trustedKeys(k0.publicPem, keys.publicPem, await keys.rotations());

describe("the master's signing key on disk", () => {
  it('a rotation leaves the key and the rotations agreeing, and nothing beside them', async () => {
    const [dir, db] = [tempDir('keys'), await database()];
    const keys = await MasterKeys.load(db, dir);
    const first = keys.publicPem;
    await keys.rotate();
    await keys.rotate();
    expect(readdirSync(dir).sort()).toEqual(['signing.key', 'signing.key.rotations.json']);
    const again = await MasterKeys.load(db, dir);
    expect(again.publicPem).toBe(keys.publicPem);
    expect(trustedKeys(first, again.publicPem, await again.rotations())).toHaveLength(3);
    // The key file names the keys it replaced: what they signed, the master signs again (packages).
    expect(again.ownKeys).toEqual(trustedKeys(first, again.publicPem, await again.rotations()));
    const kept = JSON.parse(readFileSync(join(dir, 'signing.key.rotations.json'), 'utf8'));
    expect(kept).toEqual(await again.rotations());
  });

  it('killed after the rotation was kept: the new key is taken up at the next start', async () => {
    const dir = masterData({ key: k1, rotations: [r1], next: k2 });
    const keys = await MasterKeys.load(await database([r1, r2]), dir);
    expect(keys.publicPem).toBe(k2.publicPem);
    expect(keys.notices.join()).toMatch(/finished the key rotation/);
    expect(await deviceTrusts(keys)).toHaveLength(3);
    expect(readdirSync(dir).sort()).toEqual(['signing.key', 'signing.key.rotations.json']);
    expect(JSON.parse(readFileSync(join(dir, 'signing.key.rotations.json'), 'utf8'))).toHaveLength(2);
  });

  it('killed before the rotation was kept: the old key stays, and the next rotation chains from it', async () => {
    const dir = masterData({ key: k1, rotations: [r1], next: k2 });
    const keys = await MasterKeys.load(await database([r1]), dir);
    expect(keys.publicPem).toBe(k1.publicPem);
    expect(existsSync(join(dir, 'signing.key.next-4242'))).toBe(false);
    await keys.rotate();
    expect(await deviceTrusts(keys)).toHaveLength(3);
  });

  it('a new key written a moment ago whose rotation is not kept yet is left: another master may be rotating', async () => {
    const dir = masterData({ key: k1, rotations: [r1], next: k2, young: true });
    const keys = await MasterKeys.load(await database([r1]), dir);
    expect(keys.publicPem).toBe(k1.publicPem);
    expect(existsSync(join(dir, 'signing.key.next-4242'))).toBe(true);
    expect(keys.notices.join()).toMatch(/left signing.key.next-4242, written in the last minute/);
  });

  it('a rotation kept without its key (a version before this one) is dropped, so later rotations chain', async () => {
    const keys = await MasterKeys.load(await database(), masterData({ key: k1, rotations: [r1, r2] }));
    expect(keys.notices.join()).toMatch(/dropped 1 rotation/);
    expect(await keys.rotations()).toEqual([r1]);
    await keys.rotate();
    // Before, the chain went k0 → k1 → k2 (lost) and k1 → k3: devices refused k3.
    expect(await deviceTrusts(keys)).toHaveLength(3);
  });

  it('rotations kept beside the key before the database kept them are served from the database', async () => {
    const db = await database();
    await MasterKeys.load(db, masterData({ key: k1, rotations: [r1] }));
    const other = await MasterKeys.load(db, masterData({ key: k0 }));
    expect(await other.rotations()).toEqual([r1]);
  });

  it('a master sharing the key file takes up the rotation another made, and rotates from it', async () => {
    const [dir, db] = [masterData({ key: k0 }), await database()];
    const [m1, m2] = [await MasterKeys.load(db, dir), await MasterKeys.load(db, dir)];
    await m1.rotate();
    expect(m2.fingerprint).toBe(m1.fingerprint);
    await m2.rotate();
    const m3 = await MasterKeys.load(db, dir);
    expect(await deviceTrusts(m3)).toHaveLength(3);
    expect(m3.publicPem).toBe(m2.publicPem);
  });

  it('a master with its own copy of the key serves the rotation another made, and does not fork it', async () => {
    const db = await database();
    const [a, b] = [masterData({ key: k0 }), masterData({ key: k0 })];
    const [ma, mb] = [await MasterKeys.load(db, a), await MasterKeys.load(db, b)];
    await ma.rotate();
    // B still signs with k0, which devices keep trusting, and hands out the rotation to A's key.
    expect(mb.publicPem).toBe(k0.publicPem);
    expect(await deviceTrusts(mb)).toEqual([k0.publicPem, ma.publicPem]);
    // Before, B served no rotation: relays enrolled at B refused what A signed.
    await expect(mb.rotate()).rejects.toThrow(/another master has rotated the key since, to SHA256:/);
    expect(await mb.rotations()).toHaveLength(1);
    for (const f of ['signing.key', 'signing.key.rotations.json']) copyFileSync(join(a, f), join(b, f));
    expect(mb.fingerprint).toBe(ma.fingerprint);
    await mb.rotate();
    expect(await deviceTrusts(ma)).toHaveLength(3);
  });

  it('a key file that is not a key is named', async () => {
    const dir = tempDir('keys');
    writeFileSync(join(dir, 'signing.key'), '{"privatePem": "-----BEGIN');
    await expect(MasterKeys.load(await database(), dir)).rejects.toThrow(/signing.key is not a Fanout signing key/);
  });

  it('a rotation in the database that is not one is named, with where its copy is', async () => {
    const db = await database([r1]);
    await db.updateTable('key_rotations').set({ statement: '{"statement": {"type": "fanout-key-rot' }).execute();
    await expect(MasterKeys.load(db, masterData({ key: k1, rotations: [r1] }))).rejects.toThrow(
      /key rotation 1 in the database \(table key_rotations\) is not a rotation statement; .*signing\.key\.rotations\.json beside the signing key/,
    );
  });
});

describe('a file replaced whole', () => {
  it('from many writers at once in one process: one of them, whole, and nothing left beside it', async () => {
    const dir = tempDir('replace');
    const file = join(dir, 'master.keys.json');
    const texts = Array.from({ length: 40 }, (_, i) => JSON.stringify({ writer: i, pad: 'x'.repeat(40 - i) }));
    // Before, all wrote one temporary file: renames failed (ENOENT) and what was left could be torn.
    await Promise.all(texts.map((t) => replaceFile(file, t)));
    expect(texts).toContain(readFileSync(file, 'utf8'));
    expect(readdirSync(dir)).toEqual(['master.keys.json']);
  });

  it('that cannot be replaced: nothing is left beside it', async () => {
    const dir = tempDir('replace');
    // Before, each failed write left its temporary file behind, a new one each time.
    await expect(replaceFile(join(dir, 'nowhere', 'x.json'), 'after')).rejects.toThrow(/ENOENT/);
    mkdirSync(join(dir, 'taken'));
    writeFileSync(join(dir, 'taken', 'inside'), '');
    await expect(replaceFile(join(dir, 'taken'), 'after')).rejects.toThrow(/EISDIR|ENOTEMPTY|EEXIST/);
    expect(readdirSync(dir)).toEqual(['taken']);
  });
});

describe("a device's pinned key on disk", () => {
  it('a torn master.keys.json is set aside: the pinned key holds, and the next enrollment brings the rotations', async () => {
    const dir = tempDir('pin');
    const pin = new PinnedKey(dir);
    await pin.accept(k0.publicPem);
    await pin.accept(k1.publicPem, [r1]);
    const kept = join(dir, 'master.keys.json');
    writeFileSync(kept, readFileSync(kept, 'utf8').slice(0, 40));
    // Before, the relay or agent did not start: JSON.parse threw.
    const after = new PinnedKey(dir);
    expect(after.notice).toMatch(/master.keys.json cannot be used/);
    expect(after.keys).toEqual([k0.publicPem]);
    await after.accept(k1.publicPem, [r1]);
    expect(after.keys).toEqual([k0.publicPem, k1.publicPem]);
    expect(new PinnedKey(dir).keys).toEqual([k0.publicPem, k1.publicPem]);
  });

  it('a master or relay that has not heard of the latest rotation does not take its key back', async () => {
    const dir = tempDir('pin');
    const pin = new PinnedKey(dir);
    await pin.accept(k0.publicPem);
    await pin.accept(k2.publicPem, [r1, r2]);
    await pin.accept(k1.publicPem, [r1]);
    expect(pin.keys).toHaveLength(3);
    expect(pin.current).toBe(k2.publicPem);
    expect(new PinnedKey(dir).keys).toHaveLength(3);
    // A shorter chain that is not the start of the known one is no excuse for a key it does not lead to.
    await expect(pin.accept(generateSigningKey().publicPem, [])).rejects.toThrow(/key changed/);
    expect(pin.keys).toHaveLength(3);
  });
});
