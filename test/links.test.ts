// What the master hands out for later: the resolve link in a ticket mail (good for days) and the
// dashboard's event ticket (a minute). Both must still hold after `fanout key rotate` and a restart
// of the master, as they do for another master on the same database.
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TicketLinks } from '../src/alerts/links.ts';
import { MailSink } from '../src/lab/mail-sink.ts';
import { sharedSecret } from '../src/master/shared-secrets.ts';
import { generateSigningKey } from '../src/protocol/crypto.ts';
import { openStore } from '../src/store/index.ts';
import {
  caArgs,
  type Network,
  runFanout,
  serverTlsArgs,
  startFanout,
  startNetwork,
  tempDir,
  waitFor,
} from './helpers.ts';

let net: Network;
const sink = new MailSink();

beforeAll(async () => {
  const port = await sink.listen();
  net = await startNetwork({
    name: 'links',
    relays: ['relay-dal'],
    agentsPerRelay: 1,
    startAgents: false,
    config: [
      'alerts:',
      '  failureTypes:',
      '    DISK_FULL: { threshold: 1, patterns: ["ENOSPC"] }',
      'mail:',
      `  smtp: { host: 127.0.0.1, port: ${port}, secure: false }`,
      'redistribution:',
      '  planOnTicketResolve: false',
    ].join('\n'),
  });
});
afterAll(async () => {
  await net?.stopAll();
  await sink.close();
});

describe('after a key rotation and a restart of the master', () => {
  it("a ticket mail's resolve link and a dashboard event ticket still hold", async () => {
    const sent = await runFanout(
      ['alerts', 'send', '--json', '--text', `${new Date().toISOString()} relay-dal - job=j-1 msg="ENOSPC"`],
      { env: net.env },
    );
    expect(sent.code, sent.stderr).toBe(0);
    const mail = await waitFor('the ticket mail', async () => sink.messages.find((m) => /t-[a-z0-9]+/.test(m.subject)));
    const link = /(https?:\/\/\S+\/tickets\/\S+\/resolve\?exp=\d+&key=\S+)/.exec(mail.text)![1];
    const { ticket } = await net.admin.get<{ ticket: string }>('api/v1/events/ticket');

    const rotated = await runFanout(['key', 'rotate', '--json'], { env: net.env });
    expect(rotated.code, rotated.stderr).toBe(0);
    const host = new URL(net.master.url).host;
    await net.master.stop();
    net.master = await startFanout(
      ['master', '--data', join(net.dir, 'master'), '--listen', host, ...serverTlsArgs(), ...caArgs()],
      { logDir: join(net.dir, 'logs'), name: 'master-again' },
    );

    // Before, both were keyed by the signing key in force at the master's start: 401 for each.
    const events = await fetch(`${net.master.url}/api/v1/events?ticket=${encodeURIComponent(ticket)}`);
    expect(events.status).toBe(200);
    await events.body?.cancel();
    expect((await fetch(link)).status).toBe(200);
    const done = await fetch(link, { method: 'POST' });
    expect(done.status).toBe(200);
    expect(await done.text()).toMatch(/Ticket t-[a-z0-9]+ is resolved/);
    // A forged link is still refused.
    expect((await fetch(link.replace(/key=.*/, 'key=forged'))).status).toBe(401);
  });
});

describe('the shared secrets', () => {
  it("hold links mailed before the upgrade, and are the first master's for every master after it", async () => {
    const { db } = await openStore(join(tempDir('links-db'), 'master.db'));
    const [k1, k2] = [generateSigningKey().privatePem, generateSigningKey().privatePem];
    // What versions before this one keyed links with: the signing key in force.
    const before = new TicketLinks(createHash('sha256').update(`fanout ticket links\n${k1}`).digest(), 86_400_000);
    const mailed = new URL(before.url('https://master.test', 't-1'));
    const after = new TicketLinks(await sharedSecret(db, 'ticket links', k1), 86_400_000);
    const q = mailed.searchParams;
    expect(after.problem('t-1', q.get('exp') ?? undefined, q.get('key') ?? undefined)).toBeUndefined();
    expect(after.problem('t-2', q.get('exp') ?? undefined, q.get('key') ?? undefined)).toBe(
      'the link is not valid for this ticket',
    );
    // A master started later with another key (rotated, or a copy of its own) keys links the same way.
    expect(await sharedSecret(db, 'ticket links', k2)).toEqual(await sharedSecret(db, 'ticket links', k1));
    expect(await sharedSecret(db, 'event tickets', k1)).not.toEqual(await sharedSecret(db, 'ticket links', k1));
    await db.destroy();
  });
});
