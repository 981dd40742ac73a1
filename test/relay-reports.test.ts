// A relay's report of target states, as the master takes it, on both stores: on PostgreSQL the
// states of a report are written a hundred to a statement (src/master/target-writes.ts), and must
// mean exactly what they meant one by one.
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Client } from '../src/protocol/client.ts';
import { type Network, runFanout, startNetwork, waitFor, writePackage } from './helpers.ts';
import { pgDatabase } from './pg.ts';

describe.each([
  { backend: 'sqlite', open: async () => undefined },
  { backend: 'postgres', open: pgDatabase },
])('relay reports at the master ($backend)', ({ backend, open }) => {
  let net: Network | undefined;
  let drop = async () => {};
  afterAll(async () => {
    await net?.stopAll();
    await drop();
  });

  it('take the last state of each target, only for targets of the reporting relay, installed only with the signed tree', async () => {
    const db = await open();
    if (db) drop = db.drop;
    net = await startNetwork({
      name: `reports-${backend}`,
      relays: ['relay-a', 'relay-b'],
      agentsPerRelay: 2,
      startAgents: false,
      masterArgs: db ? ['--db', db.url] : [],
    });
    const n = net;
    const dir = writePackage(join(n.dir, 'pkgs', 'menu'), 'menu', '1.0.0', { 'menu.txt': 'menu\n' });
    expect((await runFanout(['package', 'build', dir, '-o', `${dir}.tgz`])).code).toBe(0);
    const pushed = await runFanout(['package', 'push', `${dir}.tgz`, '--json'], { env: n.env });
    const { tree } = JSON.parse(pushed.stdout);
    const endpoints = ['relay-a-pos-1', 'relay-a-pos-2', 'relay-b-pos-1'];
    const { jobId } = await n.admin.post<{ jobId: string }>('api/v1/jobs', {
      packages: ['menu@1.0.0'],
      targets: endpoints,
    });
    const view = () => n.admin.get<any>(`api/v1/jobs/${jobId}`);
    // Both relays have the command; then they stop, so that only this test speaks for them.
    await waitFor('both relays to have the command', async () => (await view()).relays.every((r: any) => r.delivered));
    await Promise.all(Object.values(n.relays).map((r) => r.stop()));
    const states = async () =>
      Object.fromEntries((await view()).targets.map((t: any) => [t.deviceId, [t.state, t.failureType ?? null]]));
    const before = await states();

    const relayA = new Client({ baseUrl: n.master.url, token: n.tokens['relay-a'] });
    // 250 states in one report: more than one statement's worth, each target named many times.
    const targets = Array.from({ length: 250 }, (_, i) => ({
      jobId,
      deviceId: endpoints[i % 2],
      state: i % 3 ? 'downloading' : 'installing',
      attempt: 1,
    }));
    targets.push(
      // relay-b's target: not relay-a's to speak for.
      { jobId, deviceId: 'relay-b-pos-1', state: 'installed', attempt: 1, trees: { 'menu@1.0.0': tree } } as any,
      { jobId, deviceId: 'relay-a-pos-2', state: 'failed', failureType: 'INSTALL_FAILED', attempt: 1 } as any,
      { jobId, deviceId: 'relay-a-pos-1', state: 'installed', attempt: 1, trees: { 'menu@1.0.0': tree } } as any,
      // Installed, but not with the signed tree: the master makes it TAMPERED.
      {
        jobId,
        deviceId: 'relay-a-pos-2',
        state: 'installed',
        attempt: 2,
        trees: { 'menu@1.0.0': '0'.repeat(64) },
      } as any,
    );
    await relayA.post('api/v1/relay/reports', { targets });
    expect(await states()).toEqual({
      'relay-a-pos-1': ['installed', null],
      'relay-a-pos-2': ['failed', 'TAMPERED'],
      'relay-b-pos-1': before['relay-b-pos-1'],
    });
    expect((await view()).targets.find((t: any) => t.deviceId === 'relay-a-pos-2').error).toMatch(/0{64}/);
  });
});
