// Commands are delivered by acknowledgement (DESIGN §15): jobs created all at once on PostgreSQL
// (where sequence numbers commit out of order) all reach the relay, and a relay that starts with an
// empty data folder gets only the commands still open for it.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Network, runFanout, startNetwork, waitFor, writePackage } from './helpers.ts';
import { pgDatabase } from './pg.ts';

let net: Network;
let drop = async () => {};
const jobsAt = (data: string) => {
  try {
    return readdirSync(join(data, 'jobs')).filter((f) => f.endsWith('.jsonl')).length;
  } catch {
    return 0;
  }
};

beforeAll(async () => {
  const pg = await pgDatabase();
  drop = pg.drop;
  net = await startNetwork({
    name: 'delivery',
    masterArgs: ['--db', pg.url],
    relays: ['relay-a'],
    agentsPerRelay: 2,
    startAgents: false,
  });
  const dir = writePackage(join(net.dir, 'pkgs', 'd'), 'd', '1.0.0', { 'd.txt': 'd\n' });
  await runFanout(['package', 'build', dir, '-o', `${dir}.tgz`]);
  expect((await runFanout(['package', 'push', `${dir}.tgz`], { env: net.env })).code).toBe(0);
});
afterAll(async () => {
  await net?.stopAll();
  await drop();
});

describe('delivery by acknowledgement', () => {
  it('40 jobs created at once on PostgreSQL all reach the relay; none is skipped', async () => {
    const created = await Promise.all(
      Array.from({ length: 40 }, () =>
        net.admin.post<{ jobId: string }>('api/v1/jobs', { packages: ['d@1.0.0'], targets: ['relay-a-pos-1'] }),
      ),
    );
    expect(new Set(created.map((c) => c.jobId)).size).toBe(40);
    await waitFor('every command in the relay job log', async () => jobsAt(net.relays['relay-a'].data) === 40, 30_000);
    // …and acknowledged: the master has none open for the relay.
    const open = await fetch(`${net.master.url}/api/v1/relay/commands?wait=0`, {
      headers: { authorization: `Bearer ${net.tokens['relay-a']}` },
    });
    expect((await open.json()).commands).toEqual([]);
  });

  it('a relay started with an empty data folder gets only the commands still open for it', async () => {
    const relay = net.relays['relay-a'];
    await relay.stop();
    const { jobId } = await net.admin.post<{ jobId: string }>('api/v1/jobs', {
      packages: ['d@1.0.0'],
      targets: ['relay-a-pos-2'],
    });
    const fresh = await net.startRelay('relay-a', ['--data', join(net.dir, 'relay-a-fresh')]);
    await waitFor(
      'the open command',
      async () => jobsAt(fresh.data === relay.data ? join(net.dir, 'relay-a-fresh') : fresh.data) >= 1,
      15_000,
    ).catch(() => undefined);
    const files = readdirSync(join(net.dir, 'relay-a-fresh', 'jobs'));
    expect(files).toEqual([`${jobId}.jsonl`]);
  });
});
