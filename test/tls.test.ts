// TLS beyond the defaults (the whole suite already runs on HTTPS): mutual TLS between an agent and
// its relay, and SMTP certificates checked like any other.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SMTPServer } from 'smtp-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Mailer } from '../src/alerts/mailer.ts';
import { Faults } from '../src/common/faults.ts';
import { makeLabTls } from '../src/lab/ca.ts';
import { parseConfig } from '../src/master/config.ts';
import { openStore } from '../src/store/index.ts';
import { type Network, queueMail, runFanout, startNetwork, tempDir, testTls, writePackage } from './helpers.ts';

let net: Network;
const tls = testTls()!;

beforeAll(async () => {
  net = await startNetwork({ name: 'mtls', relays: ['relay-m'], agentsPerRelay: 1, startAgents: false });
  // The relay now asks every client for a certificate its CA signed.
  const relay = net.relays['relay-m'];
  await relay.stop();
  await net.startRelay('relay-m', ['--listen', new URL(relay.url).host, '--tls-client-ca', tls.ca]);
});
afterAll(async () => {
  await net?.stopAll();
});

describe('mutual TLS', () => {
  it('a relay started with --tls-client-ca serves an agent that shows its certificate, and no one else', async () => {
    const relay = net.relays['relay-m'];
    await expect(fetch(`${relay.url}/healthz`)).rejects.toThrow(); // no client certificate: no connection
    await net.startAgent('relay-m-pos-1', 'relay-m', {}, [
      '--client-cert',
      tls.clientCert,
      '--client-key',
      tls.clientKey,
    ]);
    const dir = writePackage(join(net.dir, 'pkgs', 'm'), 'm', '1.0.0', { 'm.txt': 'mutual\n' });
    await runFanout(['package', 'build', dir, '-o', `${dir}.tgz`]);
    expect((await runFanout(['package', 'push', `${dir}.tgz`], { env: net.env })).code).toBe(0);
    const c = await runFanout(['job', 'create', '--package', 'm@1.0.0', '--target', 'relay-m-pos-1', '--json'], {
      env: net.env,
    });
    const w = await runFanout(['job', 'wait', JSON.parse(c.stdout).jobId, '--timeout', '30'], { env: net.env });
    expect(w.code, w.stdout + w.stderr).toBe(0);
    expect(readFileSync(join(net.agents['relay-m-pos-1'].root, 'm', 'current', 'm.txt'), 'utf8')).toBe('mutual\n');
  });
});

describe('SMTP certificates', () => {
  it('a mail server whose certificate does not verify gets no mail, unless its CA is configured', async () => {
    const received: string[] = [];
    // A CA no one here trusts (the test runner trusts the suite's own CA).
    const other = await makeLabTls(join(tempDir('smtp-ca'), 'tls'));
    const smtp = new SMTPServer({
      authOptional: true,
      logger: false,
      key: readFileSync(other.key),
      cert: readFileSync(other.cert),
      onData(stream, _s, cb) {
        stream.on('data', (c) => received.push(String(c)));
        stream.on('end', () => cb());
      },
    });
    await new Promise<void>((r) => smtp.listen(0, '127.0.0.1', () => r()));
    const port = (smtp.server.address() as { port: number }).port;
    const store = await openStore(join(tempDir('smtp'), 'm.db'));
    const quiet = { info() {}, warn() {}, error() {} } as never;
    const queue = (id: string) => queueMail(store.db, id);
    try {
      await queue('t-untrusted');
      const strict = parseConfig(`mail: { smtp: { host: 127.0.0.1, port: ${port} }, retries: 0 }`).mail;
      await new Mailer(store.db, strict, quiet, new Faults(false)).sendDue();
      const refused = await store.db
        .selectFrom('outbox')
        .selectAll()
        .where('ticket_id', '=', 't-untrusted')
        .executeTakeFirstOrThrow();
      expect(refused.state).toBe('failed');
      expect(refused.last_error).toMatch(/certificate/);
      expect(received).toEqual([]);
      await queue('t-trusted');
      const withCa = parseConfig(
        `mail: { smtp: { host: 127.0.0.1, port: ${port}, tls: { ca: ${other.ca} } }, retries: 0 }`,
      ).mail;
      await new Mailer(store.db, withCa, quiet, new Faults(false)).sendDue();
      const sent = await store.db
        .selectFrom('outbox')
        .selectAll()
        .where('ticket_id', '=', 't-trusted')
        .executeTakeFirstOrThrow();
      expect(sent.state).toBe('sent');
      expect(received.join('')).toContain('Subject: t-trusted');
    } finally {
      await store.close();
      await new Promise<void>((r) => smtp.close(() => r()));
    }
  });
});
