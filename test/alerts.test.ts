// Issue 3: the alert center against a real master process and a real SMTP server on loopback.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MailSink } from '../src/lab/mail-sink.ts';
import { Client } from '../src/protocol/client.ts';
import { type Network, runFanout, startNetwork, waitFor } from './helpers.ts';

import { pgDatabase } from './pg.ts';

// The same suite runs with the master on SQLite and on PostgreSQL.
for (const backend of ['sqlite', 'postgres'] as const)
  describe(`alert center (${backend})`, () => {
    let net: Network;
    const sink = new MailSink();
    let drop = async () => {};

    const cli = async (args: string[]) => {
      const r = await runFanout([...args, '--json'], { env: net.env });
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
      return JSON.parse(r.stdout);
    };
    const send = (line: string) => cli(['alerts', 'send', '--text', line]);
    const show = (id: number) => cli(['alerts', 'show', String(id)]);
    const tickets = (): Promise<any[]> => cli(['tickets', 'list']);
    const now = () => new Date().toISOString();
    const step = (a: { steps: { step: string; outcome: string; detail?: string }[] }, name: string) =>
      a.steps.find((s) => s.step === name)!;

    beforeAll(async () => {
      const port = await sink.listen();
      const masterArgs: string[] = [];
      if (backend === 'postgres') {
        const pgdb = await pgDatabase();
        masterArgs.push('--db', pgdb.url);
        drop = pgdb.drop;
      }
      net = await startNetwork({
        name: 'alerts',
        masterArgs,
        relays: ['relay-dal', 'relay-den'],
        agentsPerRelay: 2,
        startAgents: false,
        heartbeatMs: 500,
        config: [
          'alerts:',
          '  window: 24h',
          '  heartbeatTimeout: 3s',
          '  failureTypes:',
          '    DISK_FULL:   { threshold: 1, patterns: ["no space left", "ENOSPC"] }',
          '    UNREACHABLE: { threshold: 3, patterns: ["ECONNREFUSED", "timed out", "unreachable"] }',
          '    RELAY_DOWN:  { threshold: 1 }',
          '  deviceOverrides:',
          '    relay-dal-pos-1: { UNREACHABLE: 1 }',
          'mail:',
          `  smtp: { host: 127.0.0.1, port: ${port}, secure: false }`,
          '  from: fanout@example.test',
          '  retries: 2',
          '  retryBaseMs: 200',
          'redistribution:',
          '  planOnTicketResolve: false',
        ].join('\n'),
      });
    });
    afterAll(async () => {
      await net?.stopAll();
      await sink.close();
      await drop();
    });

    describe('alert center', () => {
      it('a DISK_FULL alert makes a ticket at once, mailed to the center of the location', async () => {
        const r = await send(
          `${now()} relay-dal - job=j-42 location="Store 0042, Dallas, TX" msg="ENOSPC writing depot"`,
        );
        expect(r.accepted).toBe(1);
        const a = await show(r.ids[0]);
        expect(a.failureType).toBe('DISK_FULL');
        expect(step(a, 'classify').detail).toMatch(/ENOSPC/);
        expect(a.outcome).toBe('ticket');
        const t = (await tickets()).find((x) => x.id === a.ticketId);
        expect(t).toMatchObject({
          deviceId: 'relay-dal',
          failureType: 'DISK_FULL',
          centerId: 'mc-south',
          location: 'LOC-0',
        });
        const mail = await waitFor('the ticket mail', async () =>
          sink.messages.find((m) => m.subject.includes(a.ticketId)),
        );
        expect(mail.to).toEqual(['south-ops@example.test']);
        expect(mail.text).toContain('relay-dal');
        expect(mail.text).toContain('j-42');
        await waitFor('ticket sent', async () => (await tickets()).find((x) => x.id === a.ticketId)?.state === 'sent');
        const failed = await cli(['failed', 'list']);
        expect(failed.find((f: any) => f.jobId === 'j-42')).toMatchObject({
          relayId: 'relay-dal',
          failureType: 'DISK_FULL',
          state: 'open',
          ticketId: a.ticketId,
        });
        // The link in the mail opens a page; only its Resolve button (a POST) resolves the ticket.
        const link = /(https?:\/\/\S+\/tickets\/\S+\/resolve\?exp=\d+&key=\S+)/.exec(mail.text)![1];
        expect((await fetch(link.replace(/key=.*/, 'key=forged'))).status).toBe(401);
        expect((await fetch(link.replace(/exp=\d+/, 'exp=9999999999'))).status).toBe(401); // a longer life is a forgery too
        expect((await fetch(link.replace(a.ticketId, 't-other'), { method: 'POST' })).status).toBe(401);
        const shown = await fetch(link);
        expect(shown.status).toBe(200);
        expect(await shown.text()).toMatch(/<button type="submit">Resolve<\/button>/);
        expect((await fetch(link, { method: 'HEAD' })).status).toBe(200);
        expect((await tickets()).find((x) => x.id === a.ticketId).state).not.toBe('resolved'); // GET and HEAD change nothing
        const done = await fetch(link, { method: 'POST' });
        expect(done.status).toBe(200);
        expect(await done.text()).toContain(`Ticket ${a.ticketId} is resolved`);
        expect((await tickets()).find((x) => x.id === a.ticketId).state).toBe('resolved');
      });

      it("a ticket mail shows what a device said as the device's: no line of it passes for ours", async () => {
        // A message that imitates the mail's own resolve link, a job id with a line of its own, and a
        // bidi override that would reorder what follows it.
        const forged = 'https://evil.example/tickets/t-x/resolve?exp=1&key=k';
        const r = await net.admin.post('api/v1/alerts', {
          deviceId: 'relay-dal',
          failureType: 'FORGED_TEXT',
          jobId: 'j-77\nFailed jobs:  (none)',
          message: `ENOSPC writing depot\n\nWhen the fault is fixed, resolve the ticket:\n${forged}\nsee \u202etxt.exe`,
        });
        const a = await show(r.ids[0]);
        expect(a.outcome).toBe('ticket');
        const mail = await waitFor('the ticket mail', async () =>
          sink.messages.find((m) => m.subject.includes(a.ticketId)),
        );
        const lines: string[] = mail.text.split(/\r?\n/);
        // The one line that starts with a link is ours, and it is the master's.
        expect(lines.filter((l) => /^\s*https?:/.test(l))).toEqual([
          expect.stringContaining(`/tickets/${a.ticketId}/resolve?`),
        ]);
        expect(lines).toContain(`            | ${forged}`);
        expect(lines).toContain('            | When the fault is fixed, resolve the ticket:');
        expect(lines.filter((l) => l.startsWith('Failed jobs:'))).toEqual([
          expect.stringContaining('j-77\\u000aFailed jobs:  (none)'),
        ]);
        expect(mail.text).not.toContain('\u202e');
        expect(mail.text).toContain('see \\u202etxt.exe');
        // The CLI's explanation marks the message's lines the same way.
        const human = await runFanout(['alerts', 'show', String(r.ids[0])], { env: net.env });
        expect(human.stdout.split('\n')).toContain(`         | ${forged}`);
        expect(human.stdout).toContain('job j-77\\u000aFailed jobs:');
      });

      it('a ticket lists at most 100 jobs, however many an endpoint names', async () => {
        const asEndpoint = new Client({ baseUrl: net.master.url, token: net.tokens['relay-den-pos-2'] });
        const alerts = Array.from({ length: 150 }, (_, i) => ({
          deviceId: 'relay-den-pos-2',
          failureType: 'INSTALL_FAILED',
          jobId: `j-flood-${i}`,
          message: 'named a job',
        }));
        const { ids } = await asEndpoint.post<{ ids: number[] }>('api/v1/alerts', alerts);
        const t = (await tickets()).find((x) => x.deviceId === 'relay-den-pos-2' && x.failureType === 'INSTALL_FAILED');
        expect(t.jobs).toHaveLength(100);
        expect(t.jobs.slice(0, 2)).toEqual(['j-flood-0', 'j-flood-1']);
        expect(step(await show(ids[149]), 'ticket').detail).toMatch(/lists 100 jobs, the most a ticket lists/);
      });

      it('an UNREACHABLE alert makes a ticket only at the third, and a retried alert is not counted twice', async () => {
        const lines = [1, 2, 3].map(
          (i) => `2026-11-24T19:0${i}:00Z relay-den-pos-2 - msg="connect ECONNREFUSED 10.0.0.${i}:443"`,
        );
        const first = await send(lines[0]);
        expect((await show(first.ids[0])).outcome).toBe('below_threshold');
        const again = await send(lines[0]); // the same alert, retried
        expect(again.accepted).toBe(0);
        expect(again.ids[0]).toBe(first.ids[0]);
        const second = await send(lines[1]);
        const a2 = await show(second.ids[0]);
        expect(a2.outcome).toBe('below_threshold');
        expect(step(a2, 'track').outcome).toBe('2');
        expect(step(a2, 'threshold').detail).toMatch(/2 of 3 \(threshold of UNREACHABLE\)/);
        const third = await send(lines[2]);
        const a3 = await show(third.ids[0]);
        expect(a3.outcome).toBe('ticket');
        expect(step(a3, 'threshold').detail).toMatch(/3 of 3/);
        expect(a3.ticketId).toBeTruthy();
      });

      it('a device override makes the first UNREACHABLE alert a ticket', async () => {
        const r = await send(`${now()} relay-dal-pos-1 UNREACHABLE msg="relay timed out"`);
        const a = await show(r.ids[0]);
        expect(a.outcome).toBe('ticket');
        expect(step(a, 'threshold').detail).toMatch(/1 of 1 \(override for relay-dal-pos-1 in the config\)/);
        // And an override set at run time changes the next device's limit.
        const set = await runFanout(['threshold', 'set', 'relay-den-pos-1', 'UNREACHABLE', '1'], { env: net.env });
        expect(set.code, set.stderr).toBe(0);
        expect(set.stderr).toBe('');
        // A misspelt type is kept, but said to be unknown: it would never apply.
        const typo = await runFanout(['threshold', 'set', 'relay-den-pos-1', 'UNREACHABEL', '1'], { env: net.env });
        expect(typo.code, typo.stderr).toBe(0);
        expect(typo.stderr).toMatch(/note: UNREACHABEL is not a failure type .* check its spelling/);
        const r2 = await send(`${now()} relay-den-pos-1 UNREACHABLE msg="timed out"`);
        const a2 = await show(r2.ids[0]);
        expect(a2.outcome).toBe('ticket');
        expect(step(a2, 'threshold').detail).toMatch(/set at run time/);
      });

      it('an outage suppresses the ticket and says which outage and why', async () => {
        const o = await cli([
          'outage',
          'add',
          '--location',
          'LOC-1',
          '--until',
          new Date(Date.now() + 3_600_000).toISOString(),
          '--reason',
          'power work at the store',
        ]);
        const r = await send(`${now()} relay-den DISK_FULL msg="no space left on device"`);
        const a = await show(r.ids[0]);
        expect(a.outcome).toBe('suppressed');
        expect(step(a, 'outage').detail).toContain(o.id);
        expect(step(a, 'outage').detail).toContain('power work at the store');
        expect((await tickets()).some((t) => t.deviceId === 'relay-den' && t.failureType === 'DISK_FULL')).toBe(false);
        const human = await runFanout(['alerts', 'show', String(r.ids[0])], { env: net.env });
        expect(human.stdout).toMatch(/outage\s+suppressed — outage o-/);
        // Removed, the outage suppresses nothing more.
        expect(await cli(['outage', 'remove', o.id])).toEqual({ id: o.id });
        const after = await show((await send(`${now()} relay-den DISK_FULL msg="no space left on device"`)).ids[0]);
        expect(after.outcome).toBe('ticket');
        // The lists narrowed: this device's suppressed alert, its open tickets, one at a time.
        const suppressed = await cli(['alerts', 'list', '--device', 'relay-den', '--outcome', 'suppressed']);
        expect(suppressed.map((x: any) => x.id)).toEqual([r.ids[0]]);
        const open = await cli(['tickets', 'list', '--device', 'relay-den', '--state', 'unresolved']);
        expect(open.map((t: any) => t.id)).toContain(after.ticketId);
        expect(open.every((t: any) => t.deviceId === 'relay-den' && t.state !== 'resolved')).toBe(true);
        expect(await cli(['tickets', 'list', '--device', 'relay-den', '--state', 'resolved'])).toEqual([]);
        const [newest] = await cli(['alerts', 'list', '--limit', '1']);
        const [second] = await cli(['alerts', 'list', '--limit', '1', '--offset', '1']);
        expect(newest.id).toBeGreaterThan(second.id);
        const failed = await cli(['failed', 'list', '--state', 'unresolved']);
        expect(failed.every((f: any) => f.state !== 'resolved')).toBe(true);
        expect(await cli(['failed', 'list', '--relay', 'relay-nowhere'])).toEqual([]);
        const typo = await runFanout(['tickets', 'list', '--state', 'opne'], { env: net.env });
        expect(typo.code).toBe(1);
        expect(typo.stderr).toMatch(/state: .*"open"/);
      });

      it('a misspelled location lands on the right center, and both locations are kept', async () => {
        const r = await send(`${now()} relay-den-pos-1 DISK_FULL location="Stor 0043 Denvr CO" msg="disk full"`);
        const a = await show(r.ids[0]);
        // LOC-1 is under an outage from the test above: check normalization, then the ticket on a fresh device.
        expect(a.location).toBe('LOC-1');
        expect(a.locationReported).toBe('Stor 0043 Denvr CO');
        const r2 = await send(`${now()} relay-dal-pos-2 DISK_FULL location="Stroe 42 Dalas" msg="disk full"`);
        const a2 = await show(r2.ids[0]);
        expect(a2.location).toBe('LOC-0');
        expect(step(a2, 'normalize').outcome).toBe('fuzzy name');
        const t = (await tickets()).find((x) => x.id === a2.ticketId);
        expect(t.centerId).toBe('mc-south');
        // A location that belongs elsewhere is replaced by the inventory's, and the record says so.
        const r3 = await send(`${now()} relay-dal-pos-2 UNREACHABLE location="Store 0043, Denver, CO" msg="x"`);
        const a3 = await show(r3.ids[0]);
        expect(a3.location).toBe('LOC-0');
        expect(step(a3, 'normalize').outcome).toBe('replaced');
        expect(step(a3, 'normalize').detail).toMatch(/looks like LOC-1/);
      });

      it('a location renamed by an inventory import is matched by its new name from the next alert on', async () => {
        const text = () => `${now()} relay-den-pos-2 UNREACHABLE location="Store 0043 Boulder CO" msg="x"`;
        const normalized = async () => step(await show((await send(text())).ids[0]), 'normalize');
        expect((await normalized()).outcome).toBe('fuzzy name'); // three of "Store 0043, Denver, CO"'s four words
        const file = join(net.dir, 'inventory.yaml');
        const inventory = readFileSync(file, 'utf8');
        const renamed = join(net.dir, 'renamed.yaml');
        writeFileSync(renamed, inventory.replace('Store 0043, Denver, CO', 'Store 0043, Boulder, CO'));
        try {
          await cli(['inventory', 'import', renamed]);
          expect(await normalized()).toMatchObject({
            outcome: 'exact name',
            detail: '"Store 0043 Boulder CO" is the name of LOC-1',
          });
        } finally {
          await cli(['inventory', 'import', file]);
        }
        expect((await normalized()).outcome).toBe('fuzzy name');
      });

      it('an SMTP server that refuses twice then accepts gets the mail on the third try', async () => {
        sink.refuse = 2;
        const before = sink.attempts;
        const r = await send(`${now()} relay-dal-pos-1 DISK_FULL msg="ENOSPC"`);
        const a = await show(r.ids[0]);
        const mail = await waitFor(
          'the mail after two refusals',
          async () => sink.messages.find((m) => m.subject.includes(a.ticketId)),
          20_000,
        );
        expect(mail).toBeTruthy();
        expect(sink.attempts - before).toBe(3);
        const t = await waitFor('ticket sent', async () =>
          (await tickets()).find((x) => x.id === a.ticketId && x.state === 'sent'),
        );
        expect(t.mailAttempts).toBe(3);
        // The alert's mail step tells what became of the mail, not that it was once queued.
        const mailStep = (await show(r.ids[0])).steps.find((x: any) => x.step === 'mail');
        expect(mailStep.outcome).toBe('sent');
        expect(mailStep.detail).toMatch(/3 attempt\(s\)/);
      });

      it('an SMTP server that never accepts ends the ticket as send_failed', async () => {
        sink.refuse = -1;
        try {
          const r = await send(`${now()} relay-dal-pos-2 CERT_EXPIRED msg="certificate expired"`);
          const a = await show(r.ids[0]);
          const t = await waitFor(
            'send_failed',
            async () => (await tickets()).find((x) => x.id === a.ticketId && x.state === 'send_failed'),
            20_000,
          );
          expect(t.mailAttempts).toBe(3); // the first try and 2 retries
          expect(t.mailError).toMatch(/451|try again/);
          const mailStep = (await show(r.ids[0])).steps.find((x: any) => x.step === 'mail');
          expect(mailStep.outcome).toBe('send_failed');
          expect(mailStep.detail).toMatch(/3 attempt\(s\): .*(451|try again)/);
        } finally {
          sink.refuse = 0;
        }
      });

      it('a mail that failed is sent when asked again (ticket resend), or when a new alert comes', async () => {
        sink.refuse = -1;
        let ticketId = '';
        try {
          const r = await send(`${now()} relay-dal-pos-1 MAIL_PROBE msg="probe"`);
          ticketId = (await show(r.ids[0])).ticketId;
          await waitFor(
            'send_failed',
            async () => (await tickets()).find((x) => x.id === ticketId && x.state === 'send_failed'),
            20_000,
          );
        } finally {
          sink.refuse = 0;
        }
        const resent = await cli(['ticket', 'resend', ticketId]);
        expect(resent).toEqual({ id: ticketId, state: 'open' });
        await waitFor(
          'the mail sent at last',
          async () => (await tickets()).find((x) => x.id === ticketId)?.state === 'sent',
          20_000,
        );
        expect(sink.messages.filter((m) => m.subject.includes(ticketId))).toHaveLength(1);
        // A resolved ticket is not reopened by acknowledging it.
        await cli(['ticket', 'resolve', ticketId]);
        const ack = await runFanout(['ticket', 'ack', ticketId], { env: net.env });
        expect(ack.code).toBe(1);
        expect(ack.stderr).toMatch(/it is resolved; acknowledging it would reopen it/);
        // And a failed mail is queued again by the next alert on its ticket.
        sink.refuse = -1;
        try {
          const r2 = await send(`${now()} relay-dal-pos-2 MAIL_PROBE msg="probe"`);
          const t2 = (await show(r2.ids[0])).ticketId;
          await waitFor(
            'send_failed',
            async () => (await tickets()).find((x) => x.id === t2 && x.state === 'send_failed'),
            20_000,
          );
          sink.refuse = 0;
          const again = await show((await send(`${now()} relay-dal-pos-2 MAIL_PROBE msg="probe again"`)).ids[0]);
          expect(step(again, 'mail').outcome).toBe('queued again');
          await waitFor(
            'the mail sent after the new alert',
            async () => (await tickets()).find((x) => x.id === t2)?.state === 'sent',
            20_000,
          );
        } finally {
          sink.refuse = 0;
        }
      });

      it('a send is done only when every recipient was accepted', async () => {
        // South gets a second address, which the server refuses at RCPT TO.
        const inv =
          'centers:\n  - {id: mc-south, name: South Field Services, email: [south-ops@example.test, south-lead@example.test]}\n';
        const r0 = await net.admin.raw('POST', 'api/v1/inventory', {
          body: inv,
          headers: { 'content-type': 'application/yaml' },
        });
        expect(r0.status).toBe(200);
        sink.refuseRecipients.add('south-lead@example.test');
        try {
          const r = await send(`${now()} relay-dal-pos-1 CERT_EXPIRED msg="certificate expired"`);
          const a = await show(r.ids[0]);
          expect(a.outcome).toBe('ticket');
          const t = await waitFor(
            'send_failed',
            async () => (await tickets()).find((x) => x.id === a.ticketId && x.state === 'send_failed'),
            20_000,
          );
          // A 550 is final for that recipient: no retries, and the other recipient got one copy only.
          expect(t.mailAttempts).toBe(1);
          expect(t.mailError).toMatch(/refused for good: south-lead@example\.test/);
          const copies = sink.messages.filter((m) => m.subject.includes(a.ticketId));
          expect(copies.map((m) => m.to)).toEqual([['south-ops@example.test']]);
        } finally {
          sink.refuseRecipients.clear();
        }
      });

      it('a malformed line is kept as unparsed with the reason', async () => {
        const r = await runFanout(['alerts', 'send', '--text', 'this is not an alert', '--json'], { env: net.env });
        expect(r.code).toBe(0);
        const a = await show(JSON.parse(r.stdout).ids[0]);
        expect(a.outcome).toBe('unparsed');
        expect(step(a, 'parse').detail).toMatch(/not a timestamp/);
        const list = await cli(['alerts', 'list']);
        expect(list.some((x: any) => x.id === a.id && x.outcome === 'unparsed')).toBe(true);
      });

      it('takes JSON and Alertmanager webhooks, and refuses bad bodies with a clear error', async () => {
        const res = await net.admin.post('api/v1/alerts', [
          { deviceId: 'relay-dal-pos-2', message: 'no space left on device', alertId: 'x-1' },
          { nodevice: true },
        ]);
        expect(res.accepted).toBe(2);
        expect(res.outcomes[1]).toBe('unparsed');
        const am = await net.admin.post('api/v1/alerts/alertmanager', {
          version: '4',
          status: 'firing',
          alerts: [
            {
              status: 'firing',
              labels: { alertname: 'UNREACHABLE', instance: 'relay-den-pos-1:9100' },
              annotations: { description: 'probe timed out' },
              startsAt: now(),
              fingerprint: 'abc',
            },
          ],
        });
        expect(am.accepted).toBe(1);
        const a = await net.admin.get(`api/v1/alerts/${am.ids[0]}`);
        expect(a.deviceId).toBe('relay-den-pos-1');
        expect(a.failureType).toBe('UNREACHABLE');
        const bad = await fetch(`${net.master.url}/api/v1/alerts`, {
          method: 'POST',
          headers: { authorization: `Bearer ${net.adminToken}`, 'content-type': 'application/json' },
          body: '{"deviceId": ',
        });
        expect(bad.status).toBe(400);
        expect((await bad.json()).error.message).toMatch(/JSON/i);
        const unknown = await send(`${now()} no-such-device DISK_FULL msg="x"`);
        expect(unknown.outcomes[0]).toBe('unknown_device');
      });

      it('an alert whose texts are not well-formed (a lone surrogate, a NUL) is stored once, however often it is sent', async () => {
        // Both stores keep U+FFFD for these. A batch that compared the stored id with the id as sent
        // took every retry for a new alert, and the unique key answered 500.
        const body = JSON.stringify({
          alertId: `odd-\ud800-\u0000-${backend}`,
          deviceId: 'relay-dal-pos-2\udfff',
          jobId: 'j-\ud800',
          message: 'no space left on device',
        });
        const post = async () => {
          const res = await fetch(`${net.master.url}/api/v1/alerts`, {
            method: 'POST',
            headers: { authorization: `Bearer ${net.adminToken}`, 'content-type': 'application/json' },
            body,
          });
          const answer = await res.json();
          expect(res.status, JSON.stringify(answer)).toBe(200);
          return answer;
        };
        const first = await post();
        const again = await post();
        expect(again.ids).toEqual(first.ids);
        const a = await show(first.ids[0]);
        expect(a).toMatchObject({ alertId: `odd-\uFFFD-\uFFFD-${backend}`, jobId: 'j-\uFFFD' });
      });

      it('raises RELAY_DOWN when a relay misses its heartbeats', async () => {
        await net.relays['relay-dal'].stop();
        const a = await waitFor(
          'a RELAY_DOWN alert',
          async () =>
            (await cli(['alerts', 'list'])).find(
              (x: any) => x.failureType === 'RELAY_DOWN' && x.deviceId === 'relay-dal',
            ),
          20_000,
          500,
        );
        expect(a.outcome).toBe('ticket');

        // Its endpoints' alerts say what RELAY_DOWN says already: kept, inhibited, no ticket.
        const down = await send(`${now()} relay-dal-pos-2 PRINTER_JAM msg="paper jam"`);
        const inhibited = await show(down.ids[0]);
        expect(inhibited.outcome).toBe('inhibited');
        expect(inhibited.ticketId).toBeNull();
        expect(step(inhibited, 'inhibit').detail).toMatch(new RegExp(`RELAY_DOWN alert ${a.id}`));
        // Back: the same alert is ticketed again.
        await net.startRelay('relay-dal');
        await waitFor(
          'the relay back',
          async () => {
            const back = await send(`${now()} relay-dal-pos-2 PRINTER_JAM msg="paper jam"`);
            return (await show(back.ids[0])).outcome === 'ticket';
          },
          20_000,
          500,
        );
      });
    });
  });
