// Several masters on one PostgreSQL database (DESIGN §15): two masters with their own data folders,
// one shared signing key, package content in the database; two relays each given both masters; 20
// agents. Jobs and alerts go to both masters at once; one master is killed -9 mid-job and everything
// finishes through the other: no command lost, no mail sent twice, one ticket per device and type,
// and relays woken within a second of a job created on either master.
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MailSink } from '../src/lab/mail-sink.ts';
import { Client } from '../src/protocol/client.ts';
import { fingerprint as keyFingerprint, type Rotation } from '../src/protocol/keys.ts';
import {
  caArgs,
  type Network,
  type Proc,
  pushPackage,
  runFanout,
  serverTlsArgs,
  startFanout,
  startNetwork,
  waitFor,
  writePackage,
} from './helpers.ts';
import { pgDatabase } from './pg.ts';

const RELAYS = ['relay-a', 'relay-b'];
const PER_RELAY = 10;

let net: Network;
let masterB: Proc;
let adminB: Client;
let sink: MailSink;
let db: pg.Client;
let drop = async () => {};
let dbUrl = '';
/** Ticket events as the webhook receiver got them: delivery id and ticket id. */
let hook: Server;
const opened: { delivery: string; ticketId: string }[] = [];
const teardown: (() => Promise<unknown>)[] = [];
const onTeardown = (f: () => Promise<unknown>) => teardown.push(f);

beforeAll(async () => {
  const database = await pgDatabase();
  dbUrl = database.url;
  drop = database.drop;
  db = new pg.Client({ connectionString: database.url });
  sink = new MailSink();
  const smtp = await sink.listen();
  hook = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const { event, data } = JSON.parse(body);
      if (event === 'ticket.opened')
        opened.push({ delivery: String(req.headers['x-fanout-delivery']), ticketId: data.ticket.id });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
  const config = [
    'alerts:',
    '  heartbeatTimeout: 60s',
    'mail:',
    `  smtp: { host: 127.0.0.1, port: ${smtp} }`,
    '  retryBaseMs: 200',
    'integrations:',
    '  webhooks:',
    `    - { url: "http://127.0.0.1:${(hook.address() as { port: number }).port}/fanout", secret: a-webhook-secret-of-16+ }`,
  ].join('\n');
  const shared = ['--db', database.url, '--blobs', 'postgres'];
  net = await startNetwork({
    name: 'scale-out',
    masterArgs: shared,
    config,
    relays: RELAYS,
    agentsPerRelay: PER_RELAY,
    startAgents: false,
  });
  await db.connect();
  const dataB = join(net.dir, 'master-b');
  mkdirSync(dataB, { recursive: true });
  writeFileSync(join(dataB, 'fanout.yaml'), config);
  masterB = await startFanout(
    [
      'master',
      '--data',
      dataB,
      '--listen',
      '127.0.0.1:0',
      ...shared,
      '--signing-key',
      join(net.dir, 'master', 'signing.key'),
      ...serverTlsArgs(),
      ...caArgs(),
    ],
    { logDir: join(net.dir, 'logs'), name: 'master-b' },
  );
  adminB = new Client({ baseUrl: masterB.url, token: readFileSync(join(dataB, 'admin.token'), 'utf8').trim() });
  // Each relay is given both masters, in a different order: relay-a polls A first, relay-b polls B.
  for (const [id, masters] of [
    ['relay-a', [net.master.url, masterB.url]],
    ['relay-b', [masterB.url, net.master.url]],
  ] as const) {
    await net.relays[id].stop();
    await net.startRelay(id, [], {}, [...masters]);
  }
  await Promise.all(
    RELAYS.flatMap((r) => Array.from({ length: PER_RELAY }, (_, k) => net.startAgent(`${r}-pos-${k + 1}`, r))),
  );
  // A package pushed to master A only: relays fetching from master B find it in the shared database.
  const dir = writePackage(
    join(net.dir, 'pkgs', 'till'),
    'till',
    '1.0.0',
    { 'till.txt': 'till 1\n' },
    '#!/bin/sh\nsleep 4\necho "$FANOUT_JOB" >> ../runs.log\n',
  );
  await runFanout(['package', 'build', dir, '-o', `${dir}.tgz`]);
  expect((await runFanout(['package', 'push', `${dir}.tgz`], { env: net.env })).code).toBe(0);
  for (const v of ['2.0.0', '3.0.0', '4.0.0', '5.0.0']) {
    const d = writePackage(join(net.dir, 'pkgs', `menu-${v}`), 'menu', v, { 'menu.txt': `menu ${v}\n` });
    await runFanout(['package', 'build', d, '-o', `${d}.tgz`]);
    expect((await runFanout(['package', 'push', `${d}.tgz`], { env: cliAt(masterB, dataB) })).code).toBe(0);
  }
  await new Promise((r) => setTimeout(r, 1500)); // both relays' long-polls are waiting
}, 120_000);

afterAll(async () => {
  for (const f of teardown) await f();
  await masterB?.stop();
  await net?.stopAll();
  await db?.end();
  await sink?.close();
  await new Promise((r) => hook?.close(r));
  await drop();
});

/** The CLI's environment for the master on `data`, with its admin token. */
const cliAt = (master: Proc, data: string) => ({
  ...net.env,
  FANOUT_MASTER: master.url,
  FANOUT_TOKEN_FILE: join(data, 'admin.token'),
});

const jobLog = (relayId: string, jobId: string) => join(net.relays[relayId].data, 'jobs', `${jobId}.jsonl`);

/** Creates a job on one master and measures how long until both relays have it in their job logs. */
async function timedJob(admin: Client, pkg: string) {
  const asked = performance.now();
  const { jobId } = await admin.post<{ jobId: string }>('api/v1/jobs', { packages: [pkg], labels: { role: 'pos' } });
  const t0 = performance.now();
  console.log(`job ${jobId} created in ${(t0 - asked).toFixed(0)} ms`);
  const ms: number[] = [];
  await Promise.all(
    RELAYS.map((r) =>
      waitFor(`${jobId} at ${r}`, async () => existsSync(jobLog(r, jobId)), 15_000, 10).then(() =>
        ms.push(performance.now() - t0),
      ),
    ),
  );
  return { jobId, ms: Math.max(...ms) };
}

describe('two masters on one database', () => {
  it('tell every relay of an inventory change made on either, through the one it polls', async () => {
    const told = (r: string) =>
      readFileSync(net.relays[r].logFile, 'utf8').match(/inventory changed at the master/g)?.length ?? 0;
    const before = RELAYS.map(told);
    // Imported through B: relay-a polls A, and hears of it all the same.
    const envB = cliAt(masterB, join(net.dir, 'master-b'));
    const imp = await runFanout(['inventory', 'import', join(net.dir, 'inventory.yaml')], { env: envB });
    expect(imp.code, imp.stderr).toBe(0);
    for (const [i, r] of RELAYS.entries())
      await waitFor(`${r} told of the import`, async () => told(r) > before[i], 15_000, 100);
    // A token re-issued through A is refused at once by relay-b, which polls B.
    const device = 'relay-b-pos-1';
    const enroll = (token: string) =>
      fetch(`${net.relays['relay-b'].url}/agent/v1/enroll`, { headers: { authorization: `Bearer ${token}` } });
    expect((await enroll(net.tokens[device])).status).toBe(200);
    const was = told('relay-b');
    const r = await runFanout(['device', 'token', device, '--json'], { env: net.env });
    expect(r.code, r.stderr).toBe(0);
    await waitFor('relay-b told of the new token', async () => told('relay-b') > was, 15_000, 100);
    expect((await enroll(net.tokens[device])).status).toBe(401);
    const fresh = JSON.parse(r.stdout).token as string;
    expect((await enroll(fresh)).status).toBe(200);
    // Its agent goes on with the new token, for the test that follows.
    await net.agents[device].stop();
    net.tokens[device] = fresh;
    await net.startAgent(device, 'relay-b');
  });

  it('share the work, survive a master killed -9 mid-job, and do nothing twice', async () => {
    // Wake-ups: jobs created on either master reach both relays (one polls each master).
    const wakes: string[] = [];
    for (const [name, admin, pkg] of [
      ['A', net.admin, 'menu@2.0.0'],
      ['B', adminB, 'menu@3.0.0'],
    ] as const) {
      const { ms } = await timedJob(admin, pkg);
      wakes.push(`${name} ${ms.toFixed(0)} ms`);
      // Without the wake-up a relay polling the other master hears of it when its 20 s poll ends.
      expect(ms).toBeLessThan(2000);
    }
    console.log(`relays woken after a job was created on master ${wakes.join(', on master ')}`);

    // Jobs and alerts at both masters at once; the install takes 4 s, so the jobs are running when A dies.
    const [j1, j2] = await Promise.all([
      net.admin.post<{ jobId: string }>('api/v1/jobs', { packages: ['till@1.0.0'], labels: { role: 'pos' } }),
      adminB.post<{ jobId: string }>('api/v1/jobs', { packages: ['menu@4.0.0'], labels: { role: 'pos' } }),
    ]);
    const flaky = ['relay-a-pos-1', 'relay-a-pos-2', 'relay-b-pos-1', 'relay-b-pos-2'];
    await Promise.all(
      Array.from({ length: 8 }, (_, n) =>
        (n % 2 ? adminB : net.admin).post(
          'api/v1/alerts',
          flaky.map((deviceId) => ({
            deviceId,
            alertId: `${deviceId}-${n}`,
            message: `payment host ECONNREFUSED (${n})`,
          })),
        ),
      ),
    );
    await waitFor('the till job at both relays', async () => RELAYS.every((r) => existsSync(jobLog(r, j1.jobId))));
    // SMTP cannot be exactly-once: a master killed between the server's 250 and its own record of it
    // leaves that mail to be sent again (docs/deployment.md). The kill waits for the tickets' mail.
    await waitFor('the tickets mailed', async () => sink.messages.length >= flaky.length, 15_000, 50);
    const before = await adminB.get(`api/v1/jobs/${j1.jobId}`);
    expect(before.state).not.toBe('complete');
    await net.master.kill(); // SIGKILL: no goodbye, claims and long-polls left hanging

    // Work created after the kill reaches relay-a, which polled A, through B.
    const { jobId: j3, ms: afterKill } = await timedJob(adminB, 'menu@5.0.0');
    console.log(`after master A was killed, a job on master B reached both relays in ${afterKill.toFixed(0)} ms`);
    for (const jobId of [j1.jobId, j2.jobId, j3])
      await waitFor(
        `${jobId} complete through master B`,
        async () => (await adminB.get(`api/v1/jobs/${jobId}`)).state === 'complete',
        90_000,
        500,
      );

    // relay-a, which polled A, moved to B by itself.
    expect(readFileSync(join(net.dir, 'logs', 'relay-a.log'), 'utf8')).toMatch(
      /master unreachable; using the next one/,
    );
    // Every endpoint has each package on disk, the install script ran once per endpoint.
    for (const a of Object.values(net.agents)) {
      expect(readFileSync(join(a.root, 'till', '1.0.0', 'till.txt'), 'utf8')).toBe('till 1\n');
      expect(
        readFileSync(join(a.root, 'till', 'runs.log'), 'utf8')
          .trim()
          .split('\n'),
      ).toEqual([j1.jobId]);
      // The last two versions are kept (--keep-versions 2), older ones removed.
      for (const v of ['4.0.0', '5.0.0']) expect(existsSync(join(a.root, 'menu', v))).toBe(true);
    }
    // No command lost: each is in its relay's job log and acknowledged.
    const commands = await db.query('select job_id, relay_id, acked_at from commands');
    expect(commands.rows.length).toBe(5 * RELAYS.length);
    for (const c of commands.rows) {
      expect(existsSync(jobLog(c.relay_id, c.job_id))).toBe(true);
      expect(c.acked_at).not.toBeNull();
    }

    // One ticket per device and type; each mailed once (a claim A held when killed lapses to B).
    const tickets = await waitFor('the tickets mailed', async () => {
      const ts = await adminB.get<any[]>('api/v1/tickets');
      return ts.length >= flaky.length && ts.every((t) => sink.messages.some((m) => m.subject.includes(t.id))) && ts;
    });
    expect(tickets.map((t) => `${t.deviceId} ${t.failureType}`).sort()).toEqual(
      flaky.map((d) => `${d} UNREACHABLE`).sort(),
    );
    await new Promise((r) => setTimeout(r, 1000)); // a second copy, if any, would be on its way
    const perTicket = new Map<string, number>();
    for (const m of sink.messages) {
      const id = tickets.find((t) => m.subject.includes(t.id))?.id ?? m.subject;
      perTicket.set(id, (perTicket.get(id) ?? 0) + 1);
    }
    const twice = [...perTicket.values()].filter((n) => n > 1).length;
    console.log(
      `${commands.rows.length} commands, 0 lost; ${tickets.length} tickets, ${sink.messages.length} mails, ${twice} sent twice`,
    );
    expect(twice).toBe(0);
    expect(sink.messages.length).toBe(tickets.length);
    expect(new Set(sink.messages.map((m) => m.messageId)).size).toBe(tickets.length);
    // Each ticket's webhook reached the receiver through one master or the other, once per delivery.
    await waitFor('every ticket.opened webhook', async () => opened.length >= tickets.length, 15_000, 50);
    expect(new Set(opened.map((o) => o.ticketId))).toEqual(new Set(tickets.map((t) => t.id)));
    expect(new Set(opened.map((o) => o.delivery)).size).toBe(opened.length);

    // A relay rebuilt with an empty data folder gets what is still open for it, not every past command.
    await net.relays['relay-b'].stop();
    const fresh = await startFanout(
      [
        'relay',
        '--master',
        masterB.url,
        '--id',
        'relay-b',
        '--token-file',
        join(net.dir, 'tokens', 'relay-b.token'),
        '--data',
        join(net.dir, 'relay-b-rebuilt'),
        '--listen',
        '127.0.0.1:0',
        ...serverTlsArgs(),
        ...caArgs(),
      ],
      { logDir: join(net.dir, 'logs'), name: 'relay-b-rebuilt' },
    );
    try {
      const { jobId } = await adminB.post<{ jobId: string }>('api/v1/jobs', {
        packages: ['menu@5.0.0'],
        targets: ['relay-b-pos-1'],
      });
      const jobs = join(net.dir, 'relay-b-rebuilt', 'jobs');
      await waitFor('the new job at the rebuilt relay', async () => existsSync(join(jobs, `${jobId}.jsonl`)));
      expect(readdirSync(jobs).filter((f) => f.endsWith('.jsonl'))).toEqual([`${jobId}.jsonl`]);
    } finally {
      await fresh.stop();
    }
  }, 240_000);

  it('serve a key rotation made on another master: what it signs next is installed through a relay enrolled elsewhere', async () => {
    // A third master (A is dead) on another host, as docs/scale-out.md says: its own copy of the key.
    const dataC = join(net.dir, 'master-c');
    mkdirSync(dataC, { recursive: true });
    writeFileSync(join(dataC, 'fanout.yaml'), readFileSync(join(net.dir, 'master-b', 'fanout.yaml')));
    copyFileSync(join(net.dir, 'master', 'signing.key'), join(dataC, 'signing.key'));
    const masterC = await startFanout(
      ['master', '--data', dataC, '--listen', '127.0.0.1:0', '--db', dbUrl, '--blobs', 'postgres'].concat([
        ...serverTlsArgs(),
        ...caArgs(),
      ]),
      { logDir: join(net.dir, 'logs'), name: 'master-c' },
    );
    onTeardown(() => masterC.stop());
    const a = net.relays['relay-a'];
    await a.stop();
    await net.startRelay('relay-a', ['--listen', new URL(a.url).host], {}, [masterC.url]);
    // Rotated on B: C's copy is the key from before.
    const envB = cliAt(masterB, join(net.dir, 'master-b'));
    const r = await runFanout(['key', 'rotate', '--json'], { env: envB });
    expect(r.code, r.stderr).toBe(0);
    const { fingerprint } = JSON.parse(r.stdout) as { fingerprint: string };
    const adminC = new Client({ baseUrl: masterC.url, token: readFileSync(join(dataC, 'admin.token'), 'utf8').trim() });
    const envC = cliAt(masterC, dataC);
    const atC = await adminC.get<{ fingerprint: string; rotations: Rotation[] }>('api/v1/keys');
    expect(atC.fingerprint).not.toBe(fingerprint);
    expect(keyFingerprint(atC.rotations.at(-1)!.statement.next)).toBe(fingerprint);
    const shown = await runFanout(['key', 'show'], { env: envC });
    expect(shown.stdout).toContain(`rotations: 1, leading to ${fingerprint}`);
    expect(shown.stdout).toMatch(/signs with an older copy of the key: copy the latest here/);
    // C cannot rotate from its old copy: that would fork the chain devices follow.
    const forked = await runFanout(['key', 'rotate'], { env: envC });
    expect(forked.code).toBe(1);
    expect(forked.stderr).toMatch(/another master has rotated the key since.*FANOUT_ERR_KEY_NOT_LATEST/s);
    await pushPackage(net, 'menu', '6.0.0', { 'menu.txt': 'menu 6\n' }, envB);
    const targets = Array.from({ length: PER_RELAY }, (_, k) => `relay-a-pos-${k + 1}`);
    const { jobId } = await adminB.post<{ jobId: string }>('api/v1/jobs', { packages: ['menu@6.0.0'], targets });
    const job = await waitFor(
      'the job signed by the new key at an end',
      async () => {
        const j = await adminB.get(`api/v1/jobs/${jobId}`);
        return ['complete', 'failed'].includes(j.state) && j;
      },
      60_000,
    );
    expect(job.targets.filter((t: { state: string }) => t.state !== 'installed')).toEqual([]);
    expect(job.state).toBe('complete');
  }, 90_000);
});
