// Integrations and the master's metrics (DESIGN §10, §14): ticket and job events reach a webhook as
// signed JSON through the outbox (retried when the receiver fails), and each metric an operator graphs
// moves when what it counts does.

import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { webhookSignature } from '../src/alerts/webhooks.ts';
import { MailSink } from '../src/lab/mail-sink.ts';
import { Client } from '../src/protocol/client.ts';
import { type Network, runFanout, startNetwork, waitFor, writePackage } from './helpers.ts';

const SECRET = 'a-shared-webhook-secret';
let net: Network;
let receiver: Server;
let sink: MailSink;
const received: { event: string; delivery: string; signature: string; body: string }[] = [];
let failNext = 0;
let attempts = 0;

const bodyOf = (req: IncomingMessage) =>
  new Promise<string>((res) => {
    let b = '';
    req.on('data', (c) => (b += c));
    req.on('end', () => res(b));
  });

beforeAll(async () => {
  receiver = createServer(async (req, res) => {
    const body = await bodyOf(req);
    attempts++;
    if (failNext > 0) {
      failNext--;
      res.writeHead(503).end('busy');
      return;
    }
    received.push({
      event: String(req.headers['x-fanout-event']),
      delivery: String(req.headers['x-fanout-delivery']),
      signature: String(req.headers['x-fanout-signature']),
      body,
    });
    res.writeHead(204).end();
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  const port = (receiver.address() as { port: number }).port;
  sink = new MailSink();
  const smtp = await sink.listen();
  net = await startNetwork({
    name: 'integrations',
    relays: ['relay-i'],
    agentsPerRelay: 1,
    config: [
      'mail:',
      `  smtp: { host: 127.0.0.1, port: ${smtp} }`,
      'integrations:',
      '  retryBaseMs: 200',
      '  webhooks:',
      `    - { url: "http://127.0.0.1:${port}/fanout", secret: ${SECRET} }`,
    ].join('\n'),
  });
});
afterAll(async () => {
  await net?.stopAll();
  await sink?.close();
  await new Promise((r) => receiver?.close(r));
});

const metrics = async () => {
  const text = await (await fetch(`${net.master.url}/metrics`)).text();
  return (name: string, labels = '') => {
    const line = text.split('\n').find((l) => l.startsWith(`${name}${labels} `) || l.startsWith(`${name}${labels}{`));
    return line ? Number(line.split(' ').at(-1)) : 0;
  };
};

describe('webhooks', () => {
  it('a ticket opened and resolved reaches the webhook, signed, after the receiver refused twice', async () => {
    failNext = 2;
    const before = attempts;
    await net.admin.post('api/v1/alerts', [
      { deviceId: 'relay-i', message: 'no space left on device', alertId: 'w-1' },
    ]);
    const opened = await waitFor('ticket.opened at the webhook', async () =>
      received.find((r) => r.event === 'ticket.opened'),
    );
    expect(attempts - before).toBe(3); // refused twice, delivered on the third try
    // The receiver trusts the call only if the signature over the raw body matches the shared secret.
    expect(opened.signature).toBe(webhookSignature(SECRET, opened.body));
    expect(opened.signature).not.toBe(webhookSignature('another-secret-entirely', opened.body));
    const payload = JSON.parse(opened.body);
    expect(payload.data.ticket).toMatchObject({ deviceId: 'relay-i', failureType: 'DISK_FULL', state: 'open' });
    await net.admin.post(`api/v1/tickets/${payload.data.ticket.id}/resolve`);
    const resolved = await waitFor('ticket.resolved at the webhook', async () =>
      received.find((r) => r.event === 'ticket.resolved'),
    );
    expect(JSON.parse(resolved.body).data).toMatchObject({ ticket: { id: payload.data.ticket.id }, by: 'admin' });
    // Resolved again: nothing more to announce.
    await net.admin.post(`api/v1/tickets/${payload.data.ticket.id}/resolve`);
    await new Promise((r) => setTimeout(r, 1500)); // the sender polls every 500 ms
    expect(received.filter((r) => r.event === 'ticket.resolved')).toHaveLength(1);
  });
});

describe('metrics', () => {
  it('each metric moves with what it counts', async () => {
    const m0 = await metrics();
    const dir = writePackage(join(net.dir, 'pkgs', 'm'), 'm', '1.0.0', { 'm.txt': 'm\n' });
    await runFanout(['package', 'build', dir, '-o', `${dir}.tgz`]);
    expect((await runFanout(['package', 'push', `${dir}.tgz`], { env: net.env })).code).toBe(0);
    const { jobId } = await net.admin.post('api/v1/jobs', { packages: ['m@1.0.0'], targets: ['relay-i-pos-1'] });
    await waitFor('the job complete', async () => (await net.admin.get(`api/v1/jobs/${jobId}`)).state === 'complete');
    await net.admin.post('api/v1/alerts', [
      { deviceId: 'relay-i-pos-1', message: 'paper jam', failureType: 'PRINTER_JAM', alertId: 'm-1' },
    ]);
    await net.admin.post('api/v1/alerts', [{ deviceId: 'nobody', message: 'x', alertId: 'm-2' }]);
    await waitFor(
      'the mail sent',
      async () => (await metrics())('fanout_mail', '{state="sent"}') > m0('fanout_mail', '{state="sent"}'),
    );
    const m1 = await metrics();
    const moved = (name: string, labels: string) => [name + labels, m0(name, labels), m1(name, labels)] as const;
    const rows = [
      moved('fanout_alerts', '{outcome="ticket"}'),
      moved('fanout_alerts', '{outcome="unknown_device"}'),
      moved('fanout_tickets', '{state="sent"}'),
      moved('fanout_targets', '{state="installed"}'),
      moved('fanout_relay_jobs', '{state="complete"}'),
      moved('fanout_mail', '{state="sent"}'),
      moved('fanout_mail_attempts', ''),
      moved('fanout_webhooks', '{state="sent"}'),
    ];
    for (const [what, a, b] of rows) expect(b, what).toBeGreaterThan(a);
    expect(m1('fanout_relay_last_seen_seconds', '{relay="relay-i"}')).toBeGreaterThan(0);
    expect(m1('fanout_relay_last_seen_seconds', '{relay="relay-i"}')).toBeLessThan(30);
    // A job that fails on a full disk, then a plan for it: counted by state.
    const relay = net.relays['relay-i'];
    const relayAdmin = new Client({
      baseUrl: relay.url,
      token: readFileSync(join(relay.data, 'admin.token'), 'utf8').trim(),
    });
    const d2 = writePackage(join(net.dir, 'pkgs', 'm2'), 'm2', '1.0.0', { 'm.txt': 'm2\n' });
    await runFanout(['package', 'build', d2, '-o', `${d2}.tgz`]);
    expect((await runFanout(['package', 'push', `${d2}.tgz`], { env: net.env })).code).toBe(0);
    await relayAdmin.post('admin/v1/faults', { 'relay.depot.write': 'ENOSPC' });
    const failed = await net.admin.post('api/v1/jobs', { packages: ['m2@1.0.0'], targets: ['relay-i-pos-1'] });
    await waitFor(
      'the job failed',
      async () => (await net.admin.get(`api/v1/jobs/${failed.jobId}`)).state === 'failed',
    );
    await relayAdmin.json('DELETE', 'admin/v1/faults');
    await net.admin.post('api/v1/relays/relay-i/plans', { jobId: failed.jobId });
    const m2 = await metrics();
    expect(m2('fanout_plans', '{state="pending"}')).toBeGreaterThan(m1('fanout_plans', '{state="pending"}'));
    expect(m2('fanout_relay_jobs', '{state="failed"}')).toBeGreaterThan(m1('fanout_relay_jobs', '{state="failed"}'));

    // The plan approved, the job complete: its ticket is resolved by the repair, and announced so.
    const [ticket] = (await net.admin.get<any[]>('api/v1/tickets')).filter((t) => t.jobs.includes(failed.jobId));
    expect(ticket.state).not.toBe('resolved');
    const [plan] = (await net.admin.get<any[]>('api/v1/plans')).filter((p) => p.jobId === failed.jobId);
    await net.admin.post(`api/v1/plans/${plan.planId}/approve`);
    const repaired = await waitFor('ticket.resolved by the repair', async () =>
      received
        .map((r) => JSON.parse(r.body))
        .find((b) => b.event === 'ticket.resolved' && b.data.ticket.id === ticket.id),
    );
    expect(repaired.data).toMatchObject({
      ticket: { state: 'resolved' },
      by: `the repair: job ${failed.jobId} complete at relay-i`,
    });
    // job.complete: once for each job at its relay, with the report that completed it, however many
    // reports of it come after (as from a relay that restarted before the master acknowledged them).
    const asRelay = new Client({ baseUrl: net.master.url, token: net.tokens['relay-i'] });
    for (const id of [jobId, failed.jobId])
      await asRelay.post('api/v1/relay/reports', { jobs: [{ jobId: id, state: 'complete' }] });
    await new Promise((r) => setTimeout(r, 1500)); // the sender polls every 500 ms
    const completes = received.map((r) => JSON.parse(r.body)).filter((b) => b.event === 'job.complete');
    expect(completes.map((b) => b.data).sort((a, b) => a.jobId.localeCompare(b.jobId))).toEqual(
      [jobId, failed.jobId].sort().map((id) => ({ jobId: id, relayId: 'relay-i' })),
    );
  });
});

describe('the API described', () => {
  it('serves an OpenAPI description generated from the routes, with their bodies and parameters', async () => {
    const doc = await (await fetch(`${net.master.url}/api/v1/openapi.json`)).json();
    expect(doc.openapi).toMatch(/^3\./);
    const create = doc.paths['/api/v1/jobs'].post;
    expect(Object.keys(create.requestBody.content['application/json'].schema.properties)).toEqual(
      expect.arrayContaining(['packages', 'targets', 'labels', 'params']),
    );
    expect(doc.paths['/api/v1/fleet'].get.parameters.map((p: any) => p.name)).toEqual(
      expect.arrayContaining(['search', 'package', 'location', 'limit', 'offset']),
    );
    expect(Object.keys(doc.paths).length).toBeGreaterThan(40);
  });
});
