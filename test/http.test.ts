// The HTTP contract, in process with inject(): every daemon built apart from listen(), every answer
// checked as a client sees it (status, error code, message). The process tests keep the stories.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildAgent } from '../src/agent/main.ts';
import { buildMaster } from '../src/master/main.ts';
import { buildPackage } from '../src/protocol/package-file.ts';
import { buildRelay } from '../src/relay/main.ts';
import { inventoryYaml, tempDir, waitFor, writePackage } from './helpers.ts';

process.env.FANOUT_LOG_LEVEL ??= 'error';

type Built = Awaited<ReturnType<typeof buildMaster>>;
let master: Built;
let admin: string;
let relayToken: string;
let endpointToken: string;
const routes: { method: string; url: string; scope: string }[] = [];

const call = (method: string, url: string, token?: string, body?: unknown, headers: Record<string, string> = {}) =>
  master.app.inject({
    method: method as 'GET',
    url,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...headers },
    ...(body === undefined ? {} : typeof body === 'string' ? { payload: body } : { payload: body as object }),
  });

beforeAll(async () => {
  const dir = tempDir('http');
  master = await buildMaster({ data: join(dir, 'master'), listen: '127.0.0.1:0', onRoute: (r) => routes.push(r) });
  await master.app.ready();
  admin = readFileSync(join(dir, 'master', 'admin.token'), 'utf8').trim();
  const imp = await call('POST', '/api/v1/inventory', admin, inventoryYaml(['relay-a'], 1), {
    'content-type': 'application/yaml',
  });
  expect(imp.statusCode, imp.body).toBe(200);
  const tokens = Object.fromEntries(imp.json().devices.map((d: { id: string; token: string }) => [d.id, d.token]));
  relayToken = tokens['relay-a'];
  endpointToken = tokens['relay-a-pos-1'];
});
afterAll(async () => {
  await master?.stop();
});

describe('master HTTP contract (inject)', () => {
  it('a relay cannot take over an endpoint that is not its own and does not name it as a fallback relay', async () => {
    // The relay itself: a device, not its own endpoint.
    const r = await call('POST', '/api/v1/relay/adopt', relayToken, { deviceId: 'relay-a' });
    expect([r.statusCode, r.json().error.code]).toEqual([403, 'FANOUT_ERR_AUTH_FORBIDDEN']);
    expect(r.json().error.message).toMatch(/relay-a to be served by relay-a or to name it among its fallback/);
    // Its own endpoint, back from a fallback: nothing open elsewhere, nothing moved.
    const own = await call('POST', '/api/v1/relay/adopt', relayToken, { deviceId: 'relay-a-pos-1' });
    expect([own.statusCode, own.json()]).toEqual([200, { deviceId: 'relay-a-pos-1', relayId: 'relay-a', jobs: [] }]);
    const asEndpoint = await call('POST', '/api/v1/relay/adopt', endpointToken, { deviceId: 'relay-a-pos-1' });
    expect(asEndpoint.statusCode).toBe(403);
  });

  it('the event stream takes a short-lived ticket, never a token in its URL; a forged ticket is refused', async () => {
    const inUrl = await call('GET', `/api/v1/events?token=${admin}`);
    expect([inUrl.statusCode, inUrl.json().error.code]).toEqual([401, 'FANOUT_ERR_AUTH_MISSING']);
    const { ticket, expiresInMs } = (await call('GET', '/api/v1/events/ticket', admin)).json();
    expect(expiresInMs).toBeLessThanOrEqual(60_000);
    const [payload] = ticket.split('.');
    const forged = Buffer.from(
      JSON.stringify({ p: { kind: 'admin', name: 'mallory' }, exp: Date.now() + 1e9 }),
    ).toString('base64url');
    for (const bad of [`${forged}.${ticket.split('.')[1]}`, `${payload}.AAAA`, 'nonsense']) {
      const r = await call('GET', `/api/v1/events?ticket=${encodeURIComponent(bad)}`);
      expect([r.statusCode, r.json().error.code], bad).toEqual([401, 'FANOUT_ERR_AUTH_INVALID']);
    }
    const device = await call('GET', '/api/v1/events/ticket', endpointToken);
    expect(device.statusCode).toBe(403);
  });

  it('answers a missing, unknown or misplaced token with the right code before reading the body', async () => {
    const none = await call('GET', '/api/v1/jobs');
    expect(none.statusCode).toBe(401);
    expect(none.json().error.code).toBe('FANOUT_ERR_AUTH_MISSING');
    const bad = await call('GET', '/api/v1/jobs', 'not-a-token');
    expect(bad.statusCode).toBe(401);
    expect(bad.json().error).toMatchObject({
      code: 'FANOUT_ERR_AUTH_INVALID',
      message: expect.stringMatching(/token not recognized by the master/),
    });
    const relay = await call('GET', '/api/v1/jobs', relayToken);
    expect(relay.statusCode).toBe(403);
    expect(relay.json().error).toEqual({
      code: 'FANOUT_ERR_AUTH_FORBIDDEN',
      message: 'this needs the admin token or a user token',
    });
    const endpointAtRelayChannel = await call('GET', '/api/v1/relay/enroll', endpointToken);
    expect(endpointAtRelayChannel.statusCode).toBe(403);
    // A body that does not even parse is not read when the token is wrong.
    const unread = await call('POST', '/api/v1/jobs', 'not-a-token', '{not json', {
      'content-type': 'application/json',
    });
    expect(unread.json().error.code).toBe('FANOUT_ERR_AUTH_INVALID');
  });

  it('names every field that does not validate', async () => {
    const r = await call('POST', '/api/v1/jobs', admin, { packages: 'not a list', targets: 'x' });
    expect(r.statusCode).toBe(400);
    const e = r.json().error;
    expect(e.code).toBe('FANOUT_ERR_INPUT_INVALID');
    expect(e.details.join('\n')).toMatch(/packages/);
    expect(e.details.join('\n')).toMatch(/targets/);
    const q = await call('GET', '/api/v1/alerts?limit=0', admin);
    expect(q.statusCode).toBe(400);
    expect(q.json().error.message).toMatch(/limit/);
    // A number that is not one is said so, in words.
    for (const path of ['/api/v1/alerts/abc', '/api/v1/alerts?limit=ten']) {
      const nan = await call('GET', path, admin);
      expect(nan.statusCode, path).toBe(400);
      expect(nan.json().error.message, path).toMatch(/^(id|limit): not a number$/);
    }
  });

  it('uses the error table: unknown job, unknown package, unknown device, no targets', async () => {
    const job = await call('GET', '/api/v1/jobs/j-nope', admin);
    expect(job.statusCode).toBe(404);
    expect(job.json().error).toEqual({ code: 'FANOUT_ERR_JOB_UNKNOWN', message: 'job "j-nope" does not exist' });
    const pkg = await call('POST', '/api/v1/jobs', admin, { packages: ['ghost@1.0.0'], targets: ['relay-a-pos-1'] });
    expect(pkg.statusCode).toBe(404);
    expect(pkg.json().error.code).toBe('FANOUT_ERR_PACKAGE_UNKNOWN');
    const dev = await call('POST', '/api/v1/devices/nobody/token', admin);
    expect(dev.json().error).toEqual({ code: 'FANOUT_ERR_DEVICE_UNKNOWN', message: 'not in the inventory: nobody' });
    const inv = await call(
      'POST',
      '/api/v1/inventory',
      admin,
      'devices:\n  - {id: e1, kind: endpoint, location: NOPE, relay: ghost}\n',
      { 'content-type': 'application/yaml' },
    );
    expect(inv.statusCode).toBe(400);
    expect(inv.json().error.code).toBe('FANOUT_ERR_INVENTORY_INVALID');
    expect(inv.json().error.details).toEqual([
      'devices.0 (e1): location "NOPE" is not defined',
      'devices.0 (e1): relay "ghost" is not a relay in the inventory',
    ]);
  });

  it('refuses a package push that is not a package file, and unknown routes', async () => {
    const r = await call('POST', '/api/v1/packages', admin, { not: 'a package' });
    expect(r.statusCode).toBe(415);
    expect(r.json().error.code).toBe('FANOUT_ERR_INPUT_MEDIA_TYPE');
    const missing = await call('GET', '/api/v1/nothing-here', admin);
    expect(missing.statusCode).toBe(404);
    expect(missing.json().error).toEqual({
      code: 'FANOUT_ERR_NOT_FOUND',
      message: 'no route GET /api/v1/nothing-here',
    });
  });

  it('takes alerts from any device, with the caller as their source', async () => {
    const r = await call('POST', '/api/v1/alerts', endpointToken, {
      deviceId: 'relay-a-pos-1',
      message: 'ENOSPC: no space left on device',
      alertId: 'http-1',
    });
    expect(r.statusCode).toBe(200);
    expect(r.json()).toMatchObject({ accepted: 1 });
    const shown = await call('GET', `/api/v1/alerts/${r.json().ids[0]}`, admin);
    expect(shown.json()).toMatchObject({ source: 'relay-a-pos-1', failureType: 'DISK_FULL' });
    const bad = await call('GET', '/api/v1/alerts/abc', admin);
    expect(bad.statusCode).toBe(400);
  });

  it('serves the relay channel to relays only, and faults only with --allow-faults', async () => {
    const enroll = await call('GET', '/api/v1/relay/enroll', relayToken);
    expect(enroll.statusCode).toBe(200);
    expect(enroll.json()).toMatchObject({ relayId: 'relay-a', publicKey: expect.stringContaining('PUBLIC KEY') });
    const cmds = await call('GET', '/api/v1/relay/commands?after=0&wait=0', relayToken);
    // With the inventory's generation its devices come from, and that of relays' addresses (those of
    // its devices' fallbacks): the relay's enrollment says the same.
    expect(cmds.json()).toEqual({
      commands: [],
      inventory: enroll.json().inventory,
      addresses: enroll.json().addresses,
    });
    expect(enroll.json().addresses).toEqual(expect.any(Number));
    expect(enroll.json().inventory).toBeGreaterThan(0);
    const faults = await call('POST', '/admin/v1/faults', admin, { 'smtp.send': 'fail:1' });
    expect(faults.statusCode).toBe(403);
    expect(faults.json().error.code).toBe('FANOUT_ERR_FAULTS_DISABLED');
  });

  it('registers every route in a named scope', () => {
    const urls = routes.map((r) => `${r.method} ${r.url} [${r.scope}]`);
    expect(urls).toContain('GET /api/v1/jobs [admin]');
    expect(urls).toContain('GET /api/v1/relay/commands [relay]');
    expect(urls).toContain('POST /api/v1/alerts [alert-intake]');
    expect(urls).toContain('GET /tickets/:id/resolve [public]');
    expect(urls).toContain('GET /api/v1/events [events]');
    expect(urls).toContain('GET /healthz [public]');
  });
});

describe('bad values are refused with what is wrong, and lose nothing already accepted', () => {
  const post = (url: string, body: unknown, type?: string) =>
    call('POST', url, admin, body, type ? { 'content-type': type } : {});

  it('job parameters: unknown names, an install timeout past a day, a deadline past a year', async () => {
    const bad = async (params: Record<string, string>) =>
      (await post('/api/v1/jobs', { packages: ['x@1'], targets: ['relay-a-pos-1'], params })).json().error.message;
    expect(await bad({ preComand: 'x' })).toMatch(/unknown parameter\(s\) preComand; known: installRoot, timeoutSec/);
    expect(await bad({ timeoutSec: '2592000' })).toMatch(/timeoutSec/);
    expect(await bad({ deadline: '999d' })).toMatch(/at most 366d/);
    expect(await bad({ deadline: '+010000-01-01T00:00:00Z' })).toMatch(/more than 366 days away|neither/);
  });

  it('alerts: a time out of range spoils only its own alert; odd bodies get 4xx, big ones are clipped', async () => {
    const r = await post('/api/v1/alerts', [
      { deviceId: 'relay-a-pos-1', message: 'ok', alertId: 'range-ok', at: '2026-11-20T10:00:00Z' },
      { deviceId: 'relay-a-pos-1', message: 'bad', alertId: 'range-bad', at: '-271821-04-20T00:00:00Z' },
    ]);
    expect(r.statusCode).toBe(200);
    expect(r.json().outcomes).toEqual([expect.not.stringMatching(/unparsed/), 'unparsed']);
    expect((await post('/api/v1/alerts', Buffer.from('x'), 'application/octet-stream')).statusCode).toBe(415);
    const deep = `${'['.repeat(20000)}${']'.repeat(20000)}`;
    const nested = await post('/api/v1/alerts', deep, 'application/json');
    expect(nested.statusCode).toBeLessThan(500);
    const big = await post('/api/v1/alerts', {
      deviceId: 'relay-a-pos-1',
      message: 'y'.repeat(1_000_000),
      alertId: 'big',
    });
    const shown = await call('GET', `/api/v1/alerts/${big.json().ids[0]}`, admin);
    expect(shown.json().message.length).toBeLessThan(5000);
    expect(shown.json().raw.length).toBeLessThan(20_000);
  });

  it('an Alertmanager "resolved" notice is kept as a notice, not as unparsed', async () => {
    const r = await post('/api/v1/alerts/alertmanager', {
      alerts: [
        {
          status: 'resolved',
          labels: { alertname: 'DISK_FULL', device: 'relay-a' },
          startsAt: '2026-11-20T10:00:00Z',
          fingerprint: 'f9',
        },
      ],
    });
    expect(r.json().outcomes).toEqual(['resolved_notice']);
  });

  it('every list is paged: at most 5000 at a time, from an offset', async () => {
    for (const list of ['alerts', 'tickets', 'failed', 'outbox', 'outages', 'plans', 'jobs', 'packages']) {
      const r = await call('GET', `/api/v1/${list}?limit=1`, admin);
      expect(r.statusCode, list).toBe(200);
      expect(r.json().length, list).toBeLessThanOrEqual(1);
      expect((await call('GET', `/api/v1/${list}?limit=99999`, admin)).statusCode, list).toBe(400);
    }
    const all = (await call('GET', '/api/v1/alerts?limit=5000', admin)).json();
    const second = (await call('GET', '/api/v1/alerts?limit=1&offset=1', admin)).json();
    expect(second[0].id).toBe(all[1].id);
  });

  it('the audit log names who made each change and what it made or changed; a job names who created it', async () => {
    const audra = (await call('POST', '/api/v1/users', admin, { name: 'audra', role: 'admin' })).json().token;
    const dir = writePackage(join(tempDir('audit'), 'pkg'), 'audited', '1.0.0', { 'a.txt': 'a\n' });
    const built = await buildPackage(dir, `${dir}.tgz`);
    const pushed = await call('POST', '/api/v1/packages', audra, readFileSync(built.file), {
      'content-type': 'application/gzip',
    });
    expect(pushed.statusCode, pushed.body).toBe(200);
    const job = await call('POST', '/api/v1/jobs', audra, { packages: ['audited@1.0.0'], targets: ['relay-a-pos-1'] });
    expect(job.statusCode, job.body).toBe(200);
    const { jobId } = job.json();
    expect((await call('GET', `/api/v1/jobs/${jobId}`, admin)).json().createdBy).toBe('audra');
    const outage = (
      await call('POST', '/api/v1/outages', audra, {
        deviceId: 'relay-a',
        until: new Date(Date.now() + 60_000).toISOString(),
        reason: 'audit test',
      })
    ).json();
    await call('POST', '/api/v1/overrides', audra, { deviceId: 'relay-a', failureType: 'DISK_FULL', threshold: 4 });
    await call('POST', '/api/v1/users', audra, { name: 'otto', role: 'operator' });
    // A refused change is not a change: nothing written for it.
    await call('POST', '/api/v1/overrides', audra, { deviceId: 'nobody', failureType: 'DISK_FULL', threshold: 4 });
    // Written once each answer has gone: read until the last change is there.
    const audit = await waitFor('the audit log', async () => {
      const all = (await call('GET', '/api/v1/audit', admin)).json() as {
        who: string;
        action: string;
        target: string;
      }[];
      return all.some((a) => a.target === 'otto (operator)') && all;
    });
    expect(audit.filter((a) => a.who === 'audra').map((a) => [a.action, a.target])).toEqual([
      ['POST /api/v1/users', 'otto (operator)'],
      ['POST /api/v1/overrides', 'relay-a DISK_FULL=4'],
      ['POST /api/v1/outages', outage.id],
      ['POST /api/v1/jobs', jobId],
      ['POST /api/v1/packages', 'audited@1.0.0'],
    ]);
    expect(audit.find((a) => a.action === 'POST /api/v1/users' && a.who === 'admin')?.target).toBe('audra (admin)');
    expect(audit.find((a) => a.action === 'POST /api/v1/inventory')?.target).toBe('2 device(s), 2 new');
    // Narrowed: by person, by what was changed, by action, by time; a % is a percent sign.
    const only = async (q: string) =>
      ((await call('GET', `/api/v1/audit?${q}`, admin)).json() as { target: string }[]).map((a) => a.target);
    expect(await only('who=audra&action=OVERRIDES')).toEqual(['relay-a DISK_FULL=4']);
    expect(await only(`target=${jobId}`)).toEqual([jobId]);
    expect(await only('who=audra&action=%25')).toEqual([]);
    expect(await only(`since=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}`)).toEqual([]);
    expect((await call('GET', '/api/v1/audit?since=yesterday', admin)).statusCode).toBe(400);
    expect(await only('who=otto&since=2000-01-01')).toEqual([]);
    // A state a list does not have is refused, naming the ones it has.
    const plans = await call('GET', '/api/v1/plans?state=done', admin);
    expect(plans.statusCode).toBe(400);
    expect(plans.json().error.message).toMatch(/state: .*"pending"/);
    expect((await call('GET', '/api/v1/plans?state=pending', admin)).json()).toEqual([]);
    expect((await only('who=audra&since=2000-01-01')).length).toBe(5);
  });

  it('outages: a time past year 9999 is refused; an end may be a duration from the start', async () => {
    const r = await post('/api/v1/outages', { deviceId: 'relay-a-pos-1', until: '+010000-01-01T00:00:00Z' });
    expect(r.statusCode).toBe(400);
    expect(r.json().error.message).toMatch(/neither a time between 1970 and 9999 nor a duration like 90m/);
    const from = '2030-01-01T22:00:00.000Z';
    const four = await post('/api/v1/outages', { deviceId: 'relay-a-pos-1', from, until: '4h' });
    expect(four.statusCode).toBe(200);
    expect(four.json()).toMatchObject({ from, until: '2030-01-02T02:00:00.000Z' });
    const long = await post('/api/v1/outages', { deviceId: 'relay-a-pos-1', until: '400d' });
    expect(long.statusCode).toBe(400);
    expect(long.json().error.message).toMatch(/--until "400d" must be more than 0 and at most 366d/);
    expect((await post('/api/v1/outages', { deviceId: 'relay-a-pos-1', until: 'soon' })).statusCode).toBe(400);
  });

  it('inventory: schema and reference errors together, duplicates, and a relay in use cannot become an endpoint', async () => {
    const yaml = [
      'centers:',
      '  - {id: c1, name: C, email: [a@example.test]}',
      '  - {id: c1, name: C again, email: [b@example.test]}',
      'devices:',
      '  - {id: "bad id!", kind: endpoint, location: LOC-0, relay: relay-a}',
      '  - {id: e9, kind: endpoint, location: NOPE, relay: relay-a}',
      '  - {id: relay-a, kind: endpoint, location: LOC-0, relay: relay-a}',
      '  - {id: e10, kind: endpoint, location: LOC-0, relay: relay-a, hostname: "pos\\0one"}',
    ].join('\n');
    const r = await post('/api/v1/inventory', yaml, 'application/yaml');
    expect(r.statusCode).toBe(400);
    const details: string[] = r.json().error.details;
    expect(details.join('\n')).toMatch(/devices\.0\.id: ids are letters/);
    expect(details).toContain('centers.1 (c1): appears twice');
    expect(details.join('\n')).toMatch(/devices\.3\.hostname: a hostname has no control characters/);
    expect(details).toContain('devices.1 (e9): location "NOPE" is not defined');
    expect(details.join('\n')).toMatch(
      /devices\.2 \(relay-a\): a relay cannot become an endpoint while relay-a-pos-1 use it/,
    );
    const devices = (await call('GET', '/api/v1/inventory', admin)).json().devices.map((d: { id: string }) => d.id);
    expect(devices).not.toContain('e9');
  });
});

describe('relay and agent HTTP contract (inject)', () => {
  it('the relay admin API answers with its own token and explains what is unknown', async () => {
    const dir = tempDir('relay-http');
    const relay = await buildRelay({
      master: 'http://127.0.0.1:9',
      id: 'relay-a',
      token: relayToken,
      data: dir,
      listen: '127.0.0.1:0',
    });
    const token = readFileSync(join(dir, 'admin.token'), 'utf8').trim();
    const get = (url: string, t?: string) =>
      relay.app.inject({ method: 'GET', url, headers: t ? { authorization: `Bearer ${t}` } : {} });
    expect((await get('/admin/v1/jobs', token)).json()).toEqual([]);
    const wrong = await get('/admin/v1/jobs', 'nope');
    expect(wrong.statusCode).toBe(403);
    expect(wrong.json().error.message).toMatch(/relay relay-a's admin token/);
    const job = await get('/admin/v1/jobs/j-1', token);
    expect(job.json().error).toEqual({
      code: 'FANOUT_ERR_JOB_UNKNOWN',
      message: `job "j-1" does not exist in relay relay-a's job log`,
    });
    const approve = await relay.app.inject({
      method: 'POST',
      url: '/admin/v1/redistribute/plans/p-1/approve',
      headers: { authorization: `Bearer ${token}` },
      payload: {},
    });
    expect(approve.statusCode).toBe(404);
    expect(approve.json().error.code).toBe('FANOUT_ERR_PLAN_UNKNOWN');
    // The agent channel asks the master about a token it does not know; the master is unreachable here.
    const agent = await get('/agent/v1/assignments?wait=0', 'unknown-device');
    expect(agent.statusCode).toBe(401);
    expect(agent.json().error.code).toBe('FANOUT_ERR_AUTH_INVALID');
    await relay.app.close();
  });

  it('the agent serves health to anyone and faults only to its own token', async () => {
    const dir = tempDir('agent-http');
    const agent = await buildAgent({
      relay: 'http://127.0.0.1:9',
      id: 'pos-1',
      token: 'agent-token',
      data: join(dir, 'd'),
      root: join(dir, 'r'),
      allowFaults: true,
    });
    const { listenPlain } = await import('../src/agent/http.ts');
    const url = await listenPlain(agent.server, '127.0.0.1:0');
    try {
      expect(await (await fetch(`${url}/healthz`)).json()).toEqual({ ok: true });
      const post = (token: string) =>
        fetch(`${url}/admin/v1/faults`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: JSON.stringify({ 'agent.install': 'exit:3' }),
        });
      const wrong = await post('x');
      expect(wrong.status).toBe(403);
      expect((await wrong.json()).error.code).toBe('FANOUT_ERR_AUTH_FORBIDDEN');
      expect(await (await post('agent-token')).json()).toEqual({ 'agent.install': 'exit:3' });
      expect(await (await fetch(`${url}/metrics`)).text()).toMatch(/fanout_agent_installs_total/);
      const missing = await fetch(`${url}/nope`);
      expect((await missing.json()).error).toEqual({ code: 'FANOUT_ERR_NOT_FOUND', message: 'no route GET /nope' });
    } finally {
      agent.server.close();
    }
  });
});
