// The dashboard at fleet size (issue 12): 5,000 endpoints × 10 jobs. A change event makes the page ask
// for what changed only (a job's summary and its page of targets), not every job with every target.
import { join } from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client } from '../src/protocol/client.ts';
import { type Network, runFanout, startNetwork, waitFor, writePackage } from './helpers.ts';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ENDPOINTS = 5000;
const JOBS = 10;

let net: Network;
let browser: Browser;
let page: Page;
const jobIds: string[] = [];

beforeAll(async () => {
  net = await startNetwork({
    name: 'dash-scale',
    relays: ['relay-big'],
    agentsPerRelay: ENDPOINTS,
    startAgents: false,
  });
  // No relay: the jobs stay open with every target pending, and the test speaks for the relay.
  await net.relays['relay-big'].stop();
  const dir = writePackage(join(net.dir, 'pkgs', 'till'), 'till', '1.0.0', { 'till.txt': 'till\n' });
  await runFanout(['package', 'build', dir, '-o', `${dir}.tgz`]);
  expect((await runFanout(['package', 'push', `${dir}.tgz`], { env: net.env })).code).toBe(0);
  for (let i = 0; i < JOBS; i++)
    jobIds.push(
      (await net.admin.post<{ jobId: string }>('api/v1/jobs', { packages: ['till@1.0.0'], labels: { role: 'pos' } }))
        .jobId,
    );
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
  });
  page = await browser.newPage({ viewport: { width: 1400, height: 900 }, ignoreHTTPSErrors: true });
}, 240_000);
afterAll(async () => {
  await browser?.close();
  await net?.stopAll();
});

describe('dashboard at 5,000 endpoints × 10 jobs', () => {
  it('transfers less than 200 KB for a change event', async () => {
    await page.goto(`${net.master.url}/?token=${encodeURIComponent(net.adminToken)}`);
    for (const id of jobIds) await page.locator(`[data-job="${id}"]`).waitFor({ timeout: 60_000 });
    await page.locator('.live.on').waitFor();
    await page.waitForLoadState('networkidle');

    const bodies: { url: string; bytes: number }[] = [];
    page.on('response', async (res) => {
      if (res.url().includes('/api/v1/events')) return; // the event stream itself stays open
      bodies.push({ url: res.url(), bytes: (await res.body().catch(() => Buffer.alloc(0))).length });
    });
    // One endpoint of one job is now downloading: what a relay's report says, as the relay says it.
    const relay = new Client({ baseUrl: net.master.url, token: net.tokens['relay-big'] });
    const job = jobIds[3];
    await relay.post('api/v1/relay/reports', {
      targets: [
        { jobId: job, deviceId: 'relay-big-pos-1', state: 'failed', failureType: 'INSTALL_FAILED', error: 'exit 3' },
      ],
    });
    await waitFor('the page showing it', async () =>
      (await page.locator(`[data-job="${job}"] .progress`).innerText()).includes('1 failed'),
    );
    await page.waitForTimeout(1500); // anything else the event set off arrives
    const total = bodies.reduce((n, b) => n + b.bytes, 0);
    const everything = (await (
      await fetch(`${net.master.url}/api/v1/jobs`, {
        headers: { authorization: `Bearer ${net.adminToken}` },
      }).then((r) => r.arrayBuffer())
    ).byteLength) as number;
    console.log(
      `one change event at ${ENDPOINTS} endpoints × ${JOBS} jobs: ${(total / 1024).toFixed(1)} KB in ${bodies.length} response(s) ` +
        `(${bodies.map((b) => new URL(b.url).pathname).join(', ')}); refetching every job with its targets would be ${(everything / 1024 / 1024).toFixed(1)} MB`,
    );
    expect(bodies.length).toBeGreaterThan(0);
    expect(total).toBeLessThan(200 * 1024);
  }, 120_000);

  it('asks for the fleet page at most once a second while reports pour in, and shows the last', async () => {
    await page.getByRole('tab', { name: /^Fleet/ }).click();
    await page.locator('[data-device]').first().waitFor();
    const asked: string[] = [];
    page.on('request', (r) => r.url().includes('/api/v1/fleet') && asked.push(r.url()));
    const shown = (
      await page.locator('[data-device]').evaluateAll((els) => els.map((e) => e.getAttribute('data-device')))
    )
      .filter((id) => id?.includes('-pos-'))
      .slice(0, 20) as string[];
    const relay = new Client({ baseUrl: net.master.url, token: net.tokens['relay-big'] });
    // Twenty reports, a tenth of a second apart: twenty change events naming the fleet.
    for (const deviceId of shown) {
      await relay.post('api/v1/relay/reports', {
        targets: [{ jobId: jobIds[5], deviceId, state: 'failed', failureType: 'DRIFT', error: 'a file changed' }],
      });
      await page.waitForTimeout(100);
    }
    const last = page.locator('tr', { has: page.locator(`[data-device="${shown.at(-1)}"]`) });
    await expect.poll(() => last.innerText(), { timeout: 15_000 }).toMatch(/drift/);
    console.log(`20 fleet changes in about 2 s: the Fleet tab asked ${asked.length} time(s)`);
    expect(asked.length).toBeGreaterThan(0);
    expect(asked.length).toBeLessThanOrEqual(8);
    await page.getByRole('tab', { name: /^Jobs/ }).click();
  }, 120_000);

  it('shows a plan for 5,000 targets by its first names and counts, in less than 200 KB', async () => {
    const bodies: { url: string; bytes: number }[] = [];
    page.on('response', async (res) => {
      if (res.url().includes('/api/v1/plans')) bodies.push({ url: res.url(), bytes: (await res.body()).length });
    });
    const all = Array.from({ length: ENDPOINTS }, (_, i) => `relay-big-pos-${i + 1}`);
    const pkg = (await net.admin.get<any[]>('api/v1/packages')).find((p) => p.name === 'till');
    // Plans made after failures pile up: twenty of them, each naming every endpoint (about 200 KB).
    const plans = Array.from({ length: 20 }, (_, i) => ({
      planId: `p-big-${String(i).padStart(2, '0')}`,
      relayId: 'relay-big',
      jobId: jobIds[0],
      repeats: 'c-1',
      packages: [
        { name: pkg.name, version: pkg.version, digest: pkg.digest, size: pkg.size, signature: pkg.signature },
      ],
      params: {},
      distributionList: all.slice(1),
      original: { distributionList: all, installed: all.slice(0, 1) },
      bytesToSend: 1,
      bytesInDepot: 0,
      state: i === 19 ? 'pending' : 'superseded',
      createdAt: new Date(Date.UTC(2026, 0, 1, 0, i)).toISOString(),
    }));
    const relay = new Client({ baseUrl: net.master.url, token: net.tokens['relay-big'] });
    await relay.post('api/v1/relay/reports', { targets: [], plans });
    await page.getByRole('tab', { name: /^Plans/ }).click();
    const plan = page.locator('[data-plan="p-big-19"]');
    await expect.poll(() => plan.innerText(), { timeout: 15_000 }).toContain(`Recipients (${ENDPOINTS - 1})`);
    expect(await plan.innerText()).toContain(
      `relay-big-pos-2, relay-big-pos-3, relay-big-pos-4, relay-big-pos-5, relay-big-pos-6, relay-big-pos-7, relay-big-pos-8, relay-big-pos-9, relay-big-pos-10, relay-big-pos-11, relay-big-pos-12, relay-big-pos-13, relay-big-pos-14, relay-big-pos-15, relay-big-pos-16, relay-big-pos-17, relay-big-pos-18, relay-big-pos-19, relay-big-pos-20, relay-big-pos-21 and ${ENDPOINTS - 21} more (fanout plan show p-big-19 names all)`,
    );
    expect(await plan.innerText()).toContain(
      `${ENDPOINTS} target(s); 1 already installed and left out: relay-big-pos-1`,
    );
    const full = (await (await net.admin.raw('GET', 'api/v1/plans')).arrayBuffer()).byteLength;
    const shown = bodies.reduce((n, b) => n + b.bytes, 0);
    console.log(
      `20 plans of ${ENDPOINTS} targets: the dashboard fetched ${(shown / 1024).toFixed(1)} KB; in full ${(full / 1024 / 1024).toFixed(1)} MB`,
    );
    expect(bodies.length).toBeGreaterThan(0);
    expect(shown).toBeLessThan(200 * 1024);
    expect(full).toBeGreaterThan(20 * ENDPOINTS * 2 * 15); // every name, twice, in every plan
  }, 120_000);
});
