// Issue 5: the dashboard in a real browser (Debian's chromium via playwright-core).
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MailSink } from '../src/lab/mail-sink.ts';
import { Client } from '../src/protocol/client.ts';
import { buildPackage } from '../src/protocol/package-file.ts';
import { type Network, startNetwork, waitFor, writePackage } from './helpers.ts';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
// `SCREENSHOTS=docs/screenshots npm test` refreshes the README's pictures.
const shots = process.env.SCREENSHOTS;

let net: Network;
let browser: Browser;
let page: Page;
const sink = new MailSink();

async function shot(name: string, on: Page = page) {
  if (!shots) return;
  mkdirSync(shots, { recursive: true });
  // A bar still moving (its width eases over 0.4 s) would show the state before the one in its text.
  await on.waitForFunction(() => document.getAnimations().every((a) => a.playState !== 'running'));
  await on.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
}

beforeAll(async () => {
  if (!existsSync(join(import.meta.dirname, '..', 'dist', 'web', 'index.html')))
    throw new Error('dashboard not built: run `npm run build:web` (npm test does it first)');
  const port = await sink.listen();
  net = await startNetwork({
    name: 'dash',
    relays: ['relay-dal', 'relay-den'],
    agentsPerRelay: 2,
    config: `mail:\n  smtp: { host: 127.0.0.1, port: ${port} }\n`,
  });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  page = await browser.newPage({ viewport: { width: 1400, height: 900 }, ignoreHTTPSErrors: true });
});
afterAll(async () => {
  await browser?.close();
  await net?.stopAll();
  await sink.close();
});

describe('dashboard', () => {
  it('asks for a token, then shows jobs, alerts, tickets and a plan that can be approved, updating live', async () => {
    // A failed distribution waiting for approval: ENOSPC on relay-dal, ticket resolved → plan.
    const dir = writePackage(join(net.dir, 'pkgs', 'pos-app'), 'pos-app', '1.0.0', { 'a.txt': 'a\n' });
    const built = await buildPackage(dir, `${dir}.tgz`);
    await (
      await net.admin.raw('POST', 'api/v1/packages', {
        body: readFileSync(built.file),
        headers: { 'content-type': 'application/gzip' },
      })
    ).json();
    const relay = net.relays['relay-dal'];
    const relayAdmin = new Client({
      baseUrl: relay.url,
      token: readFileSync(join(relay.data, 'admin.token'), 'utf8').trim(),
    });
    await relayAdmin.post('admin/v1/faults', { 'relay.depot.write': 'ENOSPC' });
    const { jobId } = await net.admin.post('api/v1/jobs', { packages: ['pos-app@1.0.0'], labels: { role: 'pos' } });
    const ticket = await waitFor('the ticket', async () =>
      (await net.admin.get('api/v1/tickets')).find((t: any) => t.deviceId === 'relay-dal'),
    );

    // First visit: the token field.
    await page.goto(net.master.url + '/');
    await page.getByLabel('Token').fill('wrong-token');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').filter({ hasText: 'did not accept' }).waitFor();
    await page.getByLabel('Token').fill(net.adminToken);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator(`[data-job="${jobId}"]`).waitFor();
    await page.locator(`[data-job="${jobId}"] .state-failed`).first().waitFor();
    await shot('jobs-failed');

    // Alerts with their steps. An endpoint's message with a bidi override is shown as sent,
    // the override made visible, not obeyed.
    await net.admin.post('api/v1/alerts', {
      deviceId: 'relay-den-pos-1',
      alertId: 'bidi-1',
      message: 'all fine \u202egnp.exe',
    });
    await page.getByRole('tab', { name: /^Alerts/ }).click();
    await page.locator('tr.clickable', { hasText: 'relay-den-pos-1' }).first().click();
    const bidi = page.locator('tr.steps .msg').filter({ hasText: 'all fine' });
    await bidi.waitFor();
    expect(await bidi.innerText()).toBe('all fine \\u202egnp.exe');
    await page.locator('tr.clickable', { hasText: 'relay-den-pos-1' }).first().click();
    await page.locator('tr.clickable', { hasText: 'relay-dal' }).first().click();
    await expect.poll(() => page.locator('tr.steps').innerText(), { timeout: 15_000 }).toContain('threshold');
    expect(await page.locator('tr.steps').innerText()).toContain(ticket.id);
    await shot('alerts');

    // Tickets, with mail delivery; resolve from the dashboard asks the relay for a plan.
    await page.getByRole('tab', { name: /^Tickets/ }).click();
    const row = page.locator('tr', { hasText: ticket.id });
    await expect.poll(() => row.innerText(), { timeout: 15_000 }).toMatch(/sent/);
    await relayAdmin.json('DELETE', 'admin/v1/faults');
    // Resolving asks the relay for a plan before it answers: give a loaded machine time. The answer
    // is awaited first, so a failure says whether the click was sent and what the master said.
    const answered = page.waitForResponse((r) => r.url().endsWith(`/api/v1/tickets/${ticket.id}/resolve`), {
      timeout: 30_000,
    });
    await row.getByRole('button', { name: 'Resolve' }).click();
    expect((await answered).status()).toBe(200);
    await expect.poll(() => row.innerText(), { timeout: 15_000 }).toMatch(/resolved/);

    // The plan: a viewer sees it and cannot decide; an operator approves it, after a confirmation.
    const viewer = await net.admin.post('api/v1/users', { name: 'vera', role: 'viewer' });
    const operator = await net.admin.post('api/v1/users', { name: 'olivia', role: 'operator' });
    const signInAs = async (token: string, who: string) => {
      await page.getByRole('button', { name: 'Sign out' }).click();
      await page.getByLabel('Token').fill(token);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.locator('.me', { hasText: who }).waitFor();
    };
    await signInAs(viewer.token, 'vera (viewer)');
    await page.getByRole('tab', { name: /^Plans/ }).click();
    const plan = page.locator('article.plan').first();
    await expect.poll(() => plan.innerText(), { timeout: 15_000 }).toContain('relay-dal-pos-1, relay-dal-pos-2');
    expect(await plan.getByRole('button', { name: 'Approve' }).isDisabled()).toBe(true);
    expect(await plan.getByRole('button', { name: 'Reject' }).isDisabled()).toBe(true);
    await shot('plan-viewer');
    const planId = await plan.getAttribute('data-plan');
    const refused = await fetch(`${net.master.url}/api/v1/plans/${planId}/approve`, {
      method: 'POST',
      headers: { authorization: `Bearer ${viewer.token}`, 'content-type': 'application/json' },
      body: '{}',
    });
    expect(refused.status).toBe(403);
    await signInAs(operator.token, 'olivia (operator)');
    await page.getByRole('tab', { name: /^Plans/ }).click();
    await shot('plan');
    await plan.getByRole('button', { name: 'Approve' }).click();
    const confirm = page.getByRole('alertdialog');
    expect(await confirm.innerText()).toMatch(/Redistribute job .* to 2 target\(s\) through relay-dal now\?/);
    expect(await page.locator(`[data-plan="${planId}"] .state-pending`).count()).toBe(1); // nothing yet
    await shot('plan-confirm');
    await confirm.getByRole('button', { name: 'Yes, approve' }).click();

    // Without a reload, the job turns complete and the plan says who approved it.
    await page.getByRole('tab', { name: /^Jobs/ }).click();
    await page.locator(`[data-job="${jobId}"] h3 .state-complete`).waitFor({ timeout: 30_000 });
    expect(await page.locator(`[data-job="${jobId}"] .progress`).innerText()).toContain('4/4 installed');
    await shot('jobs-complete');

    // The fleet: every endpoint runs pos-app@1.0.0, attested from its disk; search narrows it.
    await page.getByRole('tab', { name: /^Fleet/ }).click();
    await expect
      .poll(() => page.locator('tr', { has: page.locator('[data-device="relay-den-pos-2"]') }).innerText(), {
        timeout: 15_000,
      })
      .toMatch(/pos-app@1\.0\.0 attested/);
    await page.getByLabel('Search').fill('relay-dal');
    await expect.poll(() => page.locator('[data-device]').count(), { timeout: 15_000 }).toBe(3);
    expect(await page.locator('.fleet-summary').innerText()).toMatch(/pos-app@1\.0\.0\s+2/);
    await shot('fleet');
    await page.getByRole('tab', { name: /^Plans/ }).click();
    await expect.poll(() => plan.innerText(), { timeout: 15_000 }).toMatch(/complete[\s\S]*olivia/);
    // The relay's job log names the person, and so does the audit log.
    const logged = await relayAdmin.get(`admin/v1/jobs/${jobId}`);
    expect(logged.redistributions.map((r: any) => r.approvedBy)).toEqual(['olivia']);
    const audit = await net.admin.get<any[]>('api/v1/audit');
    expect(audit.find((a) => a.action === 'POST /api/v1/plans/:id/approve')).toMatchObject({
      who: 'olivia',
      target: planId,
    });
    await page.getByRole('tab', { name: /^Jobs/ }).click();
    await expect
      .poll(() => page.locator(`[data-job="${jobId}"] .history`).innerText(), { timeout: 15_000 })
      .toMatch(
        /created by admin → failed on relay-dal: DISK_FULL.*→ plan .* → approved by olivia, redistributed → complete/,
      );
    await page.getByRole('tab', { name: /^Failed distributions/ }).click();
    await expect
      .poll(() => page.locator('tr', { hasText: jobId }).innerText(), { timeout: 15_000 })
      .toMatch(/resolved/);
    await page.getByRole('tab', { name: /^Mail/ }).click();
    await expect
      .poll(() => page.locator('tr', { hasText: ticket.id }).innerText(), { timeout: 15_000 })
      .toMatch(/sent/);

    // Down to 400 px: nothing wider than the screen; tables scroll inside their own box.
    await page.setViewportSize({ width: 400, height: 850 });
    for (const tab of ['Jobs', 'Fleet', 'Tickets']) {
      await page.getByRole('tab', { name: new RegExp(`^${tab}`) }).click();
      await page.locator('main h2').first().waitFor();
      expect(await page.evaluate(() => document.documentElement.scrollWidth), `${tab} at 400 px`).toBeLessThanOrEqual(
        400,
      );
    }
    await page.getByRole('tab', { name: /^Jobs/ }).click();
    await shot('narrow');
    await page.setViewportSize({ width: 1400, height: 900 });

    // A ticket's details: what failed where, and the mail that went out.
    await page.getByRole('tab', { name: /^Tickets/ }).click();
    await page.getByRole('button', { name: ticket.id }).click();
    const detail = page.getByRole('article', { name: `ticket ${ticket.id}` });
    await expect.poll(() => detail.innerText(), { timeout: 15_000 }).toMatch(/DISK_FULL on relay-dal at Store/);
    expect(await detail.innerText()).toMatch(/Mail to south-ops@example\.test/);

    // A plain link with ?token= signs in directly.
    const fresh = await browser.newPage({ ignoreHTTPSErrors: true });
    await fresh.goto(`${net.master.url}/?token=${encodeURIComponent(net.adminToken)}#Thresholds`);
    await fresh.getByText('DISK_FULL').first().waitFor();
    await fresh.close();
  });

  it('asks before a rollback, showing what would go back where, and says when there is nothing to go back to', async () => {
    const admin = await browser.newPage({ viewport: { width: 1400, height: 900 }, ignoreHTTPSErrors: true });
    const dir = writePackage(join(net.dir, 'pkgs', 'pos-app-1.1'), 'pos-app', '1.1.0', { 'a.txt': 'b\n' });
    const built = await buildPackage(dir, `${dir}.tgz`);
    await net.admin.raw('POST', 'api/v1/packages', {
      body: readFileSync(built.file),
      headers: { 'content-type': 'application/gzip' },
    });
    const first = (await net.admin.get<any[]>('api/v1/jobs')).find((j) => j.packages[0].version === '1.0.0')!;
    const { jobId } = await net.admin.post('api/v1/jobs', {
      packages: ['pos-app@1.1.0'],
      targets: ['relay-den-pos-1', 'relay-den-pos-2'],
    });
    await waitFor('1.1.0 installed', async () => (await net.admin.get(`api/v1/jobs/${jobId}`)).state === 'complete');
    await admin.goto(`${net.master.url}/?token=${encodeURIComponent(net.adminToken)}`);

    // The first job installed the first version anywhere: the dialog says so and offers no rollback.
    await admin.locator(`[data-job="${first.jobId}"]`).getByRole('button', { name: 'Roll back…' }).click();
    const nothing = admin.getByRole('alertdialog', { name: `roll back ${first.jobId}` });
    await expect
      .poll(() => nothing.innerText(), { timeout: 15_000 })
      .toContain(`Nothing to go back to: no target of ${first.jobId} ran an earlier version of pos-app.`);
    expect(await nothing.getByRole('button', { name: 'Yes, roll back' }).count()).toBe(0);
    await nothing.getByRole('button', { name: 'Close' }).click();

    // The second: its two targets go back to 1.0.0, which only happens once confirmed.
    await admin.locator(`[data-job="${jobId}"]`).getByRole('button', { name: 'Roll back…' }).click();
    const confirm = admin.getByRole('alertdialog', { name: `roll back ${jobId}` });
    await expect
      .poll(() => confirm.innerText(), { timeout: 15_000 })
      .toMatch(
        new RegExp(`Point 2 targets of ${jobId} back at what they ran before\\?\\s+pos-app@1\\.0\\.0 on 2 targets`),
      );
    const before = (await net.admin.get<any[]>('api/v1/jobs')).length;
    await shot('rollback-confirm', admin);
    await confirm.getByRole('button', { name: 'Yes, roll back' }).click();
    const rolledBack = await waitFor('the rollback job', async () =>
      (await net.admin.get<any[]>('api/v1/jobs')).find((j) => j.params?.rollbackOf === jobId),
    );
    expect((await net.admin.get<any[]>('api/v1/jobs')).length).toBe(before + 1);
    await admin.locator(`[data-job="${rolledBack.jobId}"] h3 .state-complete`).waitFor({ timeout: 30_000 });
    expect(await admin.locator(`[data-job="${rolledBack.jobId}"] .packages`).innerText()).toContain(
      `pos-app@1.0.0 (rollback of ${jobId})`,
    );
    expect(await admin.locator(`[data-job="${rolledBack.jobId}"] .history`).innerText()).toBe('created by admin');

    // A rollout's ring is a job on the board too, naming its rollout.
    const rollout = await net.admin.post<any>('api/v1/jobs', {
      packages: ['pos-app@1.1.0'],
      targets: ['relay-den-pos-1', 'relay-den-pos-2'],
      rings: [50, 100],
    });
    const ring = admin.locator(`[data-job="${rollout.rings[0].jobId}"] .packages`);
    await ring.waitFor({ timeout: 30_000 });
    expect(await ring.innerText()).toContain(`pos-app@1.1.0 (ring 1 of 2 of rollout ${rollout.jobId})`);
    await admin.close();
  });
});
