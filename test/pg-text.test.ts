// PostgreSQL's text cannot hold U+0000. A NUL byte that reaches the master (from a script's output in
// an endpoint's error, or in an alert) must not fail the statement that stores it: one such report
// stopped every report of its relay, for every job, retried forever.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Network, runFanout, startNetwork, waitFor, writePackage } from './helpers.ts';
import { pgDatabase } from './pg.ts';

let net: Network;
let drop = async () => {};

beforeAll(async () => {
  const database = await pgDatabase();
  drop = database.drop;
  net = await startNetwork({
    name: 'pg-text',
    relays: ['relay-a'],
    agentsPerRelay: 1,
    masterArgs: ['--db', database.url],
  });
}, 60_000);
afterAll(async () => {
  await net?.stopAll();
  await drop();
});

const json = async (args: string[]) => {
  const r = await runFanout([...args, '--json'], { env: net.env });
  expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
  return JSON.parse(r.stdout);
};

/** Posts an alert as JSON, as a monitoring system would (not through the CLI): answered 200. */
async function postAlert(body: object) {
  const res = await fetch(`${net.master.url}/api/v1/alerts`, {
    method: 'POST',
    headers: { authorization: `Bearer ${net.adminToken}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const answer = await res.json();
  expect(res.status, JSON.stringify(answer)).toBe(200);
  return answer as { ids: number[] };
}

async function jobOf(name: string, script: string) {
  const dir = writePackage(join(net.dir, 'pkgs', name), name, '1.0.0', { 'a.txt': name }, script);
  expect((await runFanout(['package', 'build', dir, '-o', `${dir}.tgz`])).code).toBe(0);
  expect((await runFanout(['package', 'push', `${dir}.tgz`], { env: net.env })).code).toBe(0);
  const { jobId } = await json([
    'job',
    'create',
    '--package',
    `${name}@1.0.0`,
    '--label',
    'role=pos',
    '--param',
    'maxAttempts=1',
  ]);
  return waitFor(`${jobId} at the master`, async () => {
    const st = await json(['job', 'status', jobId]);
    return ['complete', 'failed'].includes(st.state) ? st : undefined;
  });
}

describe('text with a NUL byte, on a PostgreSQL master', () => {
  it("an endpoint's error with a NUL byte reaches the master, and the relay's later reports too", async () => {
    const bad = await jobOf('nul-out', "#!/bin/sh\nprintf 'disk\\000gone\\n'\nexit 3\n");
    expect(bad.targets[0]).toMatchObject({ state: 'failed', failureType: 'INSTALL_FAILED' });
    expect(bad.targets[0].error).toContain('disk\uFFFDgone');
    const good = await jobOf('after-nul', '#!/bin/sh\nexit 0\n');
    expect(good.targets[0]).toMatchObject({ state: 'installed' });
  });

  it('an alert with NUL bytes is stored and shown, not refused as an internal error', async () => {
    const body = {
      deviceId: 'relay-a-pos-1',
      location: 'Store\u00000042',
      message: 'no space\u0000left',
      alertId: 'nul-1',
    };
    const answer = await postAlert(body);
    const shown = await json(['alerts', 'show', String(answer.ids[0])]);
    expect(shown.message).toBe('no space\uFFFDleft');
    expect(shown.locationReported).toBe('Store\uFFFD0042');
  });

  it('an alert whose device, job and id carry NUL bytes is stored once, however often it is sent', async () => {
    // The stored id carries U+FFFD. The batch once compared it with the id as sent, took the retry
    // for a new alert, and the unique key refused it: a 500 to every retry.
    const body = { deviceId: 'relay-a\u0000pos-1', jobId: 'j\u00001', alertId: 'nul\u00002', message: 'x' };
    const send = async () => (await postAlert(body)).ids[0];
    const id = await send();
    expect(await send()).toBe(id);
    const shown = await json(['alerts', 'show', String(id)]);
    expect(shown).toMatchObject({ alertId: 'nul\uFFFD2', jobId: 'j\uFFFD1' });
  });
});
