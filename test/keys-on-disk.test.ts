// The master's key on disk, on the master and on the devices that pinned it: a kill in the middle of
// a write, or a rotation on another master sharing the key file, leaves keys the fleet still follows.
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PinnedKey } from '../src/common/pinned-key.ts';
import { MasterKeys } from '../src/master/keys.ts';
import { generateSigningKey } from '../src/protocol/crypto.ts';
import { rotationStatement, trustedKeys } from '../src/protocol/keys.ts';
import { tempDir } from './helpers.ts';

const [k0, k1, k2] = [generateSigningKey(), generateSigningKey(), generateSigningKey()];
const r1 = rotationStatement(k0.privatePem, k0.publicPem, k1.publicPem);
const r2 = rotationStatement(k1.privatePem, k1.publicPem, k2.publicPem);
const json = (v: unknown) => `${JSON.stringify(v)}\n`;
/** A master's data folder as a kill left it. */
const masterData = (files: { key: object; rotations?: object[]; next?: object }) => {
  const dir = tempDir('keys');
  writeFileSync(join(dir, 'signing.key'), json(files.key), { mode: 0o600 });
  if (files.rotations) writeFileSync(join(dir, 'signing.key.rotations.json'), json(files.rotations));
  if (files.next) writeFileSync(join(dir, 'signing.key.next'), json(files.next));
  return dir;
};
/** What a device that pinned k0 makes of what this master offers. */
const deviceTrusts = (keys: MasterKeys) => trustedKeys(k0.publicPem, keys.publicPem, [...keys.rotations]);

describe("the master's signing key on disk", () => {
  it('a rotation leaves the key and the rotations agreeing, and nothing beside them', async () => {
    const dir = tempDir('keys');
    const keys = await MasterKeys.load(dir);
    const first = keys.publicPem;
    await keys.rotate();
    await keys.rotate();
    expect(readdirSync(dir).sort()).toEqual(['signing.key', 'signing.key.rotations.json']);
    const again = await MasterKeys.load(dir);
    expect(again.publicPem).toBe(keys.publicPem);
    expect(trustedKeys(first, again.publicPem, [...again.rotations])).toHaveLength(3);
  });

  it('killed after the rotation was kept: the new key is taken up at the next start', async () => {
    const dir = masterData({ key: k1, rotations: [r1, r2], next: k2 });
    const keys = await MasterKeys.load(dir);
    expect(keys.publicPem).toBe(k2.publicPem);
    expect(keys.notice).toMatch(/finished the key rotation/);
    expect(deviceTrusts(keys)).toHaveLength(3);
    expect(existsSync(join(dir, 'signing.key.next'))).toBe(false);
  });

  it('killed before the rotation was kept: the old key stays, and the next rotation chains from it', async () => {
    const dir = masterData({ key: k1, rotations: [r1], next: k2 });
    const keys = await MasterKeys.load(dir);
    expect(keys.publicPem).toBe(k1.publicPem);
    expect(existsSync(join(dir, 'signing.key.next'))).toBe(false);
    await keys.rotate();
    expect(deviceTrusts(keys)).toHaveLength(3);
  });

  it('a rotation kept without its key (a version before this one) is dropped, so later rotations chain', async () => {
    const keys = await MasterKeys.load(masterData({ key: k1, rotations: [r1, r2] }));
    expect(keys.notice).toMatch(/dropped 1 rotation/);
    expect(keys.rotations).toEqual([r1]);
    await keys.rotate();
    // Before, the chain went k0 → k1 → k2 (lost) and k1 → k3: devices refused k3.
    expect(deviceTrusts(keys)).toHaveLength(3);
  });

  it('a master sharing the key file takes up the rotation another made, and rotates from it', async () => {
    const dir = masterData({ key: k0 });
    const [m1, m2] = [await MasterKeys.load(dir), await MasterKeys.load(dir)];
    await m1.rotate();
    expect(m2.fingerprint).toBe(m1.fingerprint);
    expect(m2.rotations).toHaveLength(1);
    await m2.rotate();
    const m3 = await MasterKeys.load(dir);
    expect(deviceTrusts(m3)).toHaveLength(3);
    expect(m3.publicPem).toBe(m2.publicPem);
  });

  it('a key file that is not a key is named', async () => {
    const dir = tempDir('keys');
    writeFileSync(join(dir, 'signing.key'), '{"privatePem": "-----BEGIN');
    await expect(MasterKeys.load(dir)).rejects.toThrow(/signing.key is not a Fanout signing key/);
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
