// A master stopped (SIGTERM) while a ticket's mail is being sent waits for the send and records it
// before its database closes: after a restart the ticket is sent, and the mail does not go again.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { MailSink } from '../src/lab/mail-sink.ts';
import { Client } from '../src/protocol/client.ts';
import { caArgs, type Network, serverTlsArgs, startFanout, startNetwork, waitFor } from './helpers.ts';

let net: Network;
const sink = new MailSink();

beforeAll(async () => {
  const port = await sink.listen();
  net = await startNetwork({
    name: 'shutdown',
    relays: ['relay-a'],
    agentsPerRelay: 1,
    startAgents: false,
    config: [
      'alerts:',
      '  failureTypes:',
      '    DISK_FULL: { threshold: 1, patterns: ["no space left"] }',
      'mail:',
      `  smtp: { host: 127.0.0.1, port: ${port}, secure: false }`,
      '  from: fanout@example.test',
    ].join('\n'),
  });
});
afterAll(async () => {
  await net?.stopAll();
  await sink.close();
});

it('waits for a mail under way and records it before the database closes; it is not sent again', async () => {
  sink.answerDelayMs = 1500; // a slow MTA: the master is stopped while it takes the message
  const { outcomes } = await net.admin.post<{ outcomes: string[] }>('api/v1/alerts', [
    { alertId: 'full-1', deviceId: 'relay-a-pos-1', message: 'ENOSPC: no space left on device' },
  ]);
  expect(outcomes).toEqual(['ticket']);
  await waitFor('the mail under way', async () => sink.receiving === 1, 10_000, 20);
  const t0 = Date.now();
  expect(await net.master.stop()).toBe(0);
  console.log(`master stopped ${Date.now() - t0} ms after SIGTERM, its mail under way`);
  expect(sink.messages).toHaveLength(1);
  const log = readFileSync(net.master.logFile, 'utf8');
  expect(log).not.toMatch(/mailer pass failed|has already been destroyed/);

  // Started again on its data: the ticket is recorded as sent, and nothing goes out again.
  sink.answerDelayMs = 0;
  const again = await startFanout(
    ['master', '--data', join(net.dir, 'master'), '--listen', '127.0.0.1:0', ...serverTlsArgs(), ...caArgs()],
    { logDir: join(net.dir, 'logs'), name: 'master-again' },
  );
  try {
    const admin = new Client({ baseUrl: again.url, token: net.adminToken });
    await new Promise((r) => setTimeout(r, 2000)); // the mailer's passes every 250 ms
    const tickets = await admin.get('api/v1/tickets');
    expect(tickets).toEqual([expect.objectContaining({ deviceId: 'relay-a-pos-1', state: 'sent', mailAttempts: 1 })]);
    expect(await admin.get('api/v1/outbox')).toEqual([expect.objectContaining({ state: 'sent', attempts: 1 })]);
    expect(sink.messages).toHaveLength(1);
  } finally {
    await again.stop();
  }
}, 60_000);
