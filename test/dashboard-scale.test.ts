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
});
