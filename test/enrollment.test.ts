// What the master tells a relay of its devices (master/enrollment.ts): read once per inventory
// generation and shared out by relay, on the machine's real SQLite.
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Enrollments } from '../src/master/enrollment.ts';
import { importInventory, issueDeviceToken, parseInventory } from '../src/master/inventory.ts';
import { openStore } from '../src/store/index.ts';
import { inventoryYaml, tempDir } from './helpers.ts';

afterEach(() => {
  vi.useRealTimers();
});

describe("a relay's enrollment", () => {
  it('holds its own devices, follows every import and re-issued token, and is never more than a minute old', async () => {
    const store = await openStore(join(tempDir('enrollment'), 'master.db'));
    const yaml = inventoryYaml(['relay-a', 'relay-b', 'relay-c'], 2)
      .replace('    relay: relay-a\n', '    relay: relay-a\n    fallbackRelays: [relay-b]\n')
      .replace(/( {2}- id: relay-c\n {4}kind: relay\n {4}location: LOC-2\n {4}upstream: )master/, '$1relay-a');
    await importInventory(store.db, await parseInventory(yaml));
    const enrollments = new Enrollments(store.db);
    const ids = async (relayId: string) => (await enrollments.of(relayId)).devices.map((d) => d.id).sort();
    // Its endpoints, its child relay, and the endpoint that names it as a fallback.
    expect(await ids('relay-a')).toEqual(['relay-a-pos-1', 'relay-a-pos-2', 'relay-c']);
    expect(await ids('relay-b')).toEqual(['relay-a-pos-1', 'relay-b-pos-1', 'relay-b-pos-2']);
    const b = await enrollments.of('relay-b');
    expect(b.devices.find((d) => d.id === 'relay-a-pos-1')).toMatchObject({ fallbackFor: 'relay-a' });
    const token = async () =>
      (await enrollments.of('relay-a')).devices.find((d) => d.id === 'relay-a-pos-2')!.tokenHash;
    // A re-issued token bumps the generation: seen at once.
    const before = await token();
    await issueDeviceToken(store.db, 'relay-a-pos-2');
    const reissued = await token();
    expect(reissued).not.toBe(before);
    expect((await enrollments.of('relay-a')).inventory).toBe(b.inventory + 1);
    // A write that does not (a master from before the generation, on the same database): seen within a minute.
    vi.useFakeTimers({ toFake: ['Date'] });
    await store.db.updateTable('devices').set({ token_hash: 'changed' }).where('id', '=', 'relay-a-pos-2').execute();
    expect(await token()).toBe(reissued);
    vi.setSystemTime(Date.now() + 61_000);
    expect(await token()).toBe('changed');
    await store.close();
  });
});
