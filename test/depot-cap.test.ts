// A relay's depot under its cap (DESIGN §17): past depot.maxBytes (or --depot-max-bytes), content no open job needs goes,
// least recently used first; content an open job needs stays and is still served.
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Network, runFanout, startNetwork, waitFor, writePackage } from './helpers.ts';

let net: Network;
const RELAY = 'relay-cap';
const CAP = 50_000;

beforeAll(async () => {
  // The cap comes from the master's config (depot.maxBytes), given to the relay at enrollment.
  net = await startNetwork({
    name: 'depot-cap',
    relays: [RELAY],
    agentsPerRelay: 2,
    startAgents: false,
    config: `depot:\n  maxBytes: ${CAP}\n`,
  });
  await net.startAgent(`${RELAY}-pos-1`, RELAY);
  // pos-2 comes later: its job stays open meanwhile.
});
afterAll(async () => {
  await net?.stopAll();
});

/** 20 KB of random bytes: the archive does not compress below the cap's arithmetic. */
async function pushRandom(name: string) {
  const dir = writePackage(join(net.dir, 'pkgs', name), name, '1.0.0', {
    'blob.bin': randomBytes(20_000).toString('base64').slice(0, 20_000),
  });
  await runFanout(['package', 'build', dir, '-o', `${dir}.tgz`]);
  const p = await runFanout(['package', 'push', `${dir}.tgz`, '--json'], { env: net.env });
  expect(p.code, p.stderr).toBe(0);
  return JSON.parse(p.stdout) as { digest: string; size: number };
}

const depotFiles = () => {
  const root = join(net.relays[RELAY].data, 'depot', 'sha256');
  return readdirSync(root).flatMap((d) =>
    readdirSync(join(root, d))
      .filter((f) => /^[0-9a-f]{64}$/.test(f))
      .map((f) => ({ digest: `sha256:${f}`, size: statSync(join(root, d, f)).size })),
  );
};

async function runJob(pkg: string, target: string) {
  const { jobId } = await net.admin.post<{ jobId: string }>('api/v1/jobs', {
    packages: [`${pkg}@1.0.0`],
    targets: [target],
  });
  return jobId;
}
const complete = (jobId: string) =>
  waitFor(`${jobId} complete`, async () => (await net.admin.get(`api/v1/jobs/${jobId}`)).state === 'complete', 30_000);

describe('depot cap', () => {
  it('evicts least recently used content no open job needs, and still serves every open job', async () => {
    const [a, b, open, d] = [
      await pushRandom('cap-a'),
      await pushRandom('cap-b'),
      await pushRandom('cap-open'),
      await pushRandom('cap-d'),
    ];
    expect(a.size + b.size + open.size + d.size).toBeGreaterThan(CAP);
    await complete(await runJob('cap-a', `${RELAY}-pos-1`));
    await complete(await runJob('cap-b', `${RELAY}-pos-1`));
    // An open job: its endpoint is not running yet, so its content must stay.
    const openJob = await runJob('cap-open', `${RELAY}-pos-2`);
    await waitFor('the open job fetched', async () => depotFiles().some((f) => f.digest === open.digest));
    await complete(await runJob('cap-d', `${RELAY}-pos-1`));
    const kept = await waitFor('the depot back under its cap', async () => {
      const files = depotFiles();
      return files.reduce((n, f) => n + f.size, 0) <= CAP && files;
    });
    const digests = kept.map((f) => f.digest);
    expect(digests).toContain(open.digest);
    expect(digests).toContain(d.digest);
    // The least recently used went first: a, then b.
    expect(digests).not.toContain(a.digest);
    // The open job is still served from the depot when its endpoint comes.
    await net.startAgent(`${RELAY}-pos-2`, RELAY);
    await complete(openJob);
    expect(existsSync(join(net.agents[`${RELAY}-pos-2`].root, 'cap-open', '1.0.0', 'blob.bin'))).toBe(true);
  });
});
