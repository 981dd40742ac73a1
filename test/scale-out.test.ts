// Several masters on one PostgreSQL database (DESIGN §15, the part built so far): a command created on
// one master wakes a relay long-polling another at once (LISTEN/NOTIFY), not when its poll times out.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  caArgs,
  type Network,
  type Proc,
  runFanout,
  serverTlsArgs,
  startFanout,
  startNetwork,
  waitFor,
  writePackage,
} from './helpers.ts';
import { pgDatabase } from './pg.ts';

let net: Network;
let masterB: Proc;
let relay: Proc;
let drop = async () => {};

beforeAll(async () => {
  const pg = await pgDatabase();
  drop = pg.drop;
  net = await startNetwork({
    name: 'scale-out',
    masterArgs: ['--db', pg.url],
    relays: ['relay-a'],
    agentsPerRelay: 1,
    startAgents: false,
  });
  const logDir = join(net.dir, 'logs');
  masterB = await startFanout(
    [
      'master',
      '--data',
      join(net.dir, 'master-b'),
      '--listen',
      '127.0.0.1:0',
      '--db',
      pg.url,
      '--signing-key',
      join(net.dir, 'master', 'signing.key'),
      ...serverTlsArgs(),
      ...caArgs(),
    ],
    { logDir, name: 'master-b' },
  );
  // The relay now talks to master B only.
  const a = net.relays['relay-a'];
  await a.stop();
  relay = await startFanout(
    [
      'relay',
      '--master',
      masterB.url,
      '--id',
      'relay-a',
      '--token-file',
      join(net.dir, 'tokens', 'relay-a.token'),
      '--data',
      a.data,
      '--listen',
      '127.0.0.1:0',
      ...serverTlsArgs(),
      ...caArgs(),
    ],
    { logDir, name: 'relay-a-b' },
  );
  const dir = writePackage(join(net.dir, 'pkgs', 'w'), 'w', '1.0.0', { 'w.txt': 'w\n' });
  await runFanout(['package', 'build', dir, '-o', `${dir}.tgz`]);
  expect((await runFanout(['package', 'push', `${dir}.tgz`], { env: net.env })).code).toBe(0);
  await new Promise((r) => setTimeout(r, 1500)); // the relay's long-poll at master B is waiting
});
afterAll(async () => {
  await relay?.stop();
  await masterB?.stop();
  await net?.stopAll();
  await drop();
});

describe('scale-out wake-ups', () => {
  it('a job created on master A reaches a relay polling master B within a second or so', async () => {
    const t0 = performance.now();
    const { jobId } = await net.admin.post<{ jobId: string }>('api/v1/jobs', {
      packages: ['w@1.0.0'],
      targets: ['relay-a-pos-1'],
    });
    const log = join(net.relays['relay-a'].data, 'jobs', `${jobId}.jsonl`);
    await waitFor('the command at the relay', async () => existsSync(log), 15_000, 20);
    const ms = performance.now() - t0;
    console.log(`relay woken ${ms.toFixed(0)} ms after the job was created on the other master`);
    // Without the cross-master wake-up it arrives only when the 20 s long-poll ends.
    expect(ms).toBeLessThan(5000);
  });
});
