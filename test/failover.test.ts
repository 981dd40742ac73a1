// An endpoint whose relay dies turns to the fallback relay the inventory names, within failoverAfter
// and a poll; the master moves its open targets there and the install finishes through it (DESIGN §13).
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client } from '../src/protocol/client.ts';
import { inventoryYaml, type Network, pushPackage, runFanout, startNetwork, waitFor, writePackage } from './helpers.ts';

let net: Network;
const AGENT = 'relay-a-pos-1';

beforeAll(async () => {
  net = await startNetwork({ name: 'failover', relays: ['relay-a', 'relay-b'], agentsPerRelay: 1, startAgents: false });
  // The same inventory, now naming relay-b as relay-a-pos-1's fallback (an import keeps the tokens).
  const inv = inventoryYaml(['relay-a', 'relay-b'], 1).replace(
    `  - id: ${AGENT}\n    kind: endpoint\n    location: LOC-0\n    relay: relay-a\n`,
    `  - id: ${AGENT}\n    kind: endpoint\n    location: LOC-0\n    relay: relay-a\n    fallbackRelays: [relay-b]\n`,
  );
  expect(inv).toContain('fallbackRelays: [relay-b]');
  writeFileSync(join(net.dir, 'inventory-2.yaml'), inv);
  const imp = await runFanout(['inventory', 'import', join(net.dir, 'inventory-2.yaml')], { env: net.env });
  expect(imp.code, imp.stderr).toBe(0);
  // relay-a enrolls again (so it hands the fallback to its endpoint), on the same address.
  const a = net.relays['relay-a'];
  await a.stop();
  await net.startRelay('relay-a', ['--listen', new URL(a.url).host]);
  await net.startAgent(AGENT, 'relay-a', {}, ['--failover-after', '2s']);
  const dir = writePackage(join(net.dir, 'pkgs', 'app'), 'app', '1.0.0', { 'v.txt': '1\n' });
  await runFanout(['package', 'build', dir, '-o', `${dir}.tgz`]);
  expect((await runFanout(['package', 'push', `${dir}.tgz`], { env: net.env })).code).toBe(0);
}, 120_000);
afterAll(async () => {
  await net?.stopAll();
});

describe("an endpoint's last seen", () => {
  it('is its last request to its relay, passed on by the relay; a relay speaks only for devices it serves', async () => {
    const lastSeen = async (id: string) =>
      (await net.admin.get<{ devices: { id: string; lastSeen: string | null }[] }>('api/v1/fleet')).devices.find(
        (d) => d.id === id,
      )?.lastSeen;
    // Its agent has asked relay-a for work since the start, and never ran a job.
    const seen = await waitFor('relay-a-pos-1 seen', async () => (await lastSeen(AGENT)) ?? undefined);
    expect(Date.now() - Date.parse(seen)).toBeLessThan(120_000);
    expect(await lastSeen('relay-b-pos-1')).toBeFalsy(); // never started

    // relay-a saying relay-b's endpoint asked it, and its own asked in 2099.
    const asRelay = new Client({ baseUrl: net.master.url, token: net.tokens['relay-a'] });
    await asRelay.post('api/v1/relay/reports', {
      seen: [
        { deviceId: 'relay-b-pos-1', at: new Date().toISOString() },
        { deviceId: AGENT, at: '2099-01-01T00:00:00.000Z' },
      ],
    });
    expect(await lastSeen('relay-b-pos-1')).toBeFalsy();
    expect(Date.parse((await lastSeen(AGENT))!)).toBeLessThanOrEqual(Date.now());

    // relay-b, whose clock runs an hour behind: its endpoint asked a minute ago by the master's clock.
    const asB = new Client({ baseUrl: net.master.url, token: net.tokens['relay-b'] });
    const behind = (ms: number) => new Date(Date.now() - 3_600_000 - ms).toISOString();
    await asB.post('api/v1/relay/reports', {
      seen: [{ deviceId: 'relay-b-pos-1', at: behind(60_000) }],
      sentAt: behind(0),
    });
    const ago = Date.now() - Date.parse((await lastSeen('relay-b-pos-1'))!);
    expect(ago).toBeGreaterThanOrEqual(55_000);
    expect(ago).toBeLessThan(120_000);
  });
});

/** A job of app@1.0.0 to the endpoint, once complete. */
const installed = async (through: string) => {
  const { jobId } = await net.admin.post<{ jobId: string }>('api/v1/jobs', {
    packages: ['app@1.0.0'],
    targets: [AGENT],
  });
  return waitFor(
    `the job complete through ${through}`,
    async () => {
      const j = await net.admin.get(`api/v1/jobs/${jobId}`);
      return j.state === 'complete' && j;
    },
    60_000,
    250,
  );
};
/** What the endpoint logged each time it turned to another relay. */
const turns = () =>
  readFileSync(join(net.dir, 'logs', `${AGENT}.log`), 'utf8')
    .split('\n')
    .filter((l) => l.includes('turning to a fallback relay'))
    .map((l) => JSON.parse(l));

describe('fallback relays', () => {
  it('an endpoint whose relay died installs through its fallback relay', async () => {
    await net.relays['relay-a'].kill();
    const t0 = Date.now();
    const job = await installed('relay-b');
    console.log(`relay-a killed: installed through relay-b ${((Date.now() - t0) / 1000).toFixed(1)} s later`);
    // The job view says which relay served the target.
    expect(job.targets).toEqual([expect.objectContaining({ deviceId: AGENT, relayId: 'relay-b', state: 'installed' })]);
    expect(existsSync(join(net.agents[AGENT].root, 'app', '1.0.0', 'v.txt'))).toBe(true);
    // The agent turned within failoverAfter (2 s) and a poll of the dead relay.
    const turned = turns();
    expect(turned).toHaveLength(1);
    expect(turned[0].relay).toBe('relay-b');
    expect(turned[0].afterMs).toBeGreaterThanOrEqual(2000);
    expect(turned[0].afterMs).toBeLessThan(2000 + 5000);
  }, 90_000);

  it('an endpoint on a fallback relay that dies goes back to its own relay', async () => {
    // relay-a back on its address; then relay-b, which the endpoint uses now, dies.
    const a = await net.startRelay('relay-a', ['--listen', new URL(net.relays['relay-a'].url).host]);
    await net.relays['relay-b'].kill();
    const job = await installed('relay-a');
    expect(job.targets).toEqual([expect.objectContaining({ deviceId: AGENT, relayId: 'relay-a', state: 'installed' })]);
    const turned = turns();
    expect(turned.map((t) => t.to)).toEqual([expect.any(String), a.url]);
    expect(turned[1].relay).toBe('its own relay');
  }, 90_000);
});

describe("a relay's new address", () => {
  it('reaches the relays that hand it out as a fallback within a long-poll, and their endpoints, which fail over to it', async () => {
    // relay-a (its endpoint names relay-b as fallback) was started again a moment ago: its own
    // refresh is a minute away. Its endpoint reads its enrollment again every 2 s.
    const a = net.relays['relay-a'];
    await net.agents[AGENT].stop();
    await net.startAgent(AGENT, 'relay-a', {}, ['--failover-after', '2s', '--enroll-every', '2s']);
    const fallbackAt = async () => {
      const r = await fetch(`${a.url}/agent/v1/enroll`, { headers: { authorization: `Bearer ${net.tokens[AGENT]}` } });
      return ((await r.json()) as { fallbackRelays?: { id: string; url: string }[] }).fallbackRelays?.[0]?.url;
    };
    expect(await fallbackAt()).toBe(net.relays['relay-b'].url);
    // relay-b, killed by the test before, comes back on another port.
    const old = net.relays['relay-b'].url;
    const b = await net.startRelay('relay-b');
    expect(b.url).not.toBe(old);
    const t0 = Date.now();
    await waitFor('relay-a hands out relay-b new address', async () => (await fallbackAt()) === b.url, 40_000, 250);
    const took = Date.now() - t0;
    console.log(`relay-b's new address reached relay-a ${(took / 1000).toFixed(1)} s later`);
    // A long-poll's wait (20 s) and a heartbeat, with room for a slow machine.
    expect(took).toBeLessThan(35_000);
    expect(readFileSync(a.logFile, 'utf8')).toMatch(/a relay's address changed at the master; devices read again/);

    // The endpoint, enrolled before relay-b moved, fails over to where relay-b is now.
    await new Promise((r) => setTimeout(r, 3000));
    await a.kill();
    const job = await installed('relay-b at its new address');
    expect(job.targets).toEqual([expect.objectContaining({ deviceId: AGENT, relayId: 'relay-b', state: 'installed' })]);
    expect(turns().at(-1)).toMatchObject({ to: b.url, relay: 'relay-b' });
  }, 120_000);
});

describe('an endpoint that comes home', () => {
  it('takes its open targets with it: an install finished as its fallback died is reported at home', async () => {
    // relay-a (killed above) back on its address; the endpoint is on relay-b, at relay-b's new port.
    await net.startRelay('relay-a', ['--listen', new URL(net.relays['relay-a'].url).host]);
    await pushPackage(
      net,
      'slow',
      '1.0.0',
      { 's.txt': 's\n' },
      net.env,
      '#!/bin/sh\nsleep 6\necho run >> ../runs.log\n',
    );
    const { jobId } = await net.admin.post<{ jobId: string }>('api/v1/jobs', {
      packages: ['slow@1.0.0'],
      targets: [AGENT],
    });
    const target = async () =>
      (await net.admin.get<{ targets: { relayId: string; state: string }[] }>(`api/v1/jobs/${jobId}`)).targets[0];
    // relay-b, which the endpoint uses, takes the target over, and the install begins there.
    await waitFor(
      'the install running through relay-b',
      async () => {
        const t = await target();
        return t.relayId === 'relay-b' && t.state === 'installing';
      },
      60_000,
      200,
    );
    await net.relays['relay-b'].kill();
    const t0 = Date.now();
    const done = await waitFor(
      'the target installed',
      async () => {
        const t = await target();
        return t.state === 'installed' && t;
      },
      60_000,
      250,
    );
    console.log(
      `relay-b killed mid-install: reported installed through relay-a ${((Date.now() - t0) / 1000).toFixed(1)} s later`,
    );
    // Before, relay-a passed the report on and the master, which had the target at relay-b, let it drop.
    expect(done.relayId).toBe('relay-a');
    expect(turns().at(-1)).toMatchObject({ relay: 'its own relay' });
    expect(readFileSync(net.relays['relay-a'].logFile, 'utf8')).toMatch(/took over the open targets of a device/);
    // Installed once: the command relay-a got for it found it installed.
    expect(readFileSync(join(net.agents[AGENT].root, 'slow', 'runs.log'), 'utf8')).toBe('run\n');
  }, 150_000);
});
