// Every door checked: each route the master and a relay register, called with every kind of token,
// answers as its scope says. A route added without an entry here fails the first test.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildMaster } from '../src/master/main.ts';
import { buildRelay } from '../src/relay/main.ts';
import { inventoryYaml, tempDir } from './helpers.ts';

process.env.FANOUT_LOG_LEVEL ??= 'error';

type Scope = 'admin' | 'events' | 'relay' | 'content' | 'alert-intake' | 'public' | 'agent';
const MASTER: Record<string, Scope> = {
  'GET /healthz': 'public',
  'GET /metrics': 'public',
  'POST /api/v1/inventory': 'admin',
  'GET /api/v1/inventory': 'admin',
  'POST /api/v1/devices/:id/token': 'admin',
  'POST /api/v1/devices/verify': 'admin',
  'GET /api/v1/verifications/:id': 'admin',
  'GET /api/v1/fleet': 'admin',
  'GET /api/v1/rollouts': 'admin',
  'POST /api/v1/jobs/:id/resume': 'admin',
  'POST /api/v1/jobs/:id/abort': 'admin',
  'POST /api/v1/jobs/:id/rollback': 'admin',
  'GET /api/v1/jobs/:id/rollback': 'admin',
  'POST /api/v1/jobs/:id/cancel': 'admin',
  'GET /api/v1/events/ticket': 'admin',
  'GET /api/v1/jobs/:id/targets': 'admin',
  'GET /api/v1/openapi.json': 'public',
  'GET /api/v1/me': 'admin',
  'GET /api/v1/users': 'admin',
  'POST /api/v1/users': 'admin',
  'DELETE /api/v1/users/:id': 'admin',
  'GET /api/v1/audit': 'admin',
  'POST /api/v1/packages': 'admin',
  'GET /api/v1/packages': 'admin',
  'POST /api/v1/jobs': 'admin',
  'GET /api/v1/jobs': 'admin',
  'GET /api/v1/jobs/:id': 'admin',
  'GET /api/v1/relays': 'admin',
  'GET /api/v1/keys': 'admin',
  'POST /api/v1/keys/rotate': 'admin',
  'GET /api/v1/plans': 'admin',
  'GET /api/v1/plans/:id': 'admin',
  'POST /api/v1/relays/:id/plans': 'admin',
  'POST /api/v1/plans/:id/approve': 'admin',
  'POST /api/v1/plans/:id/reject': 'admin',
  'GET /api/v1/alerts': 'admin',
  'GET /api/v1/alerts/:id': 'admin',
  'GET /api/v1/failed': 'admin',
  'GET /api/v1/tickets': 'admin',
  'GET /api/v1/outbox': 'admin',
  'POST /api/v1/tickets/:id/resolve': 'admin',
  'POST /api/v1/tickets/:id/acknowledge': 'admin',
  'POST /api/v1/tickets/:id/resend': 'admin',
  'GET /api/v1/outages': 'admin',
  'POST /api/v1/outages': 'admin',
  'DELETE /api/v1/outages/:id': 'admin',
  'GET /api/v1/thresholds': 'admin',
  'POST /api/v1/overrides': 'admin',
  'POST /api/v1/alerts/alertmanager': 'admin',
  'GET /admin/v1/faults': 'admin',
  'POST /admin/v1/faults': 'admin',
  'DELETE /admin/v1/faults': 'admin',
  'GET /api/v1/events': 'events',
  'GET /api/v1/relay/enroll': 'relay',
  'GET /api/v1/relay/commands': 'relay',
  'POST /api/v1/relay/acks': 'relay',
  'POST /api/v1/relay/reports': 'relay',
  'POST /api/v1/relay/adopt': 'relay',
  'POST /api/v1/relay/commands/:id/renew': 'relay',
  'GET /api/v1/relay/failed': 'relay',
  'GET /api/v1/relay/jobs/:jobId/moved-on': 'relay',
  'POST /api/v1/relay/heartbeat': 'relay',
  'GET /api/v1/blobs/:digest': 'content',
  'POST /api/v1/alerts': 'alert-intake',
  'GET /tickets/:id/resolve': 'public',
  'POST /tickets/:id/resolve': 'public',
  'GET /*': 'public',
};
const RELAY: Record<string, Scope> = {
  'GET /healthz': 'public',
  'GET /metrics': 'public',
  'GET /agent/v1/enroll': 'agent',
  'GET /agent/v1/assignments': 'agent',
  'POST /agent/v1/reports': 'agent',
  'POST /agent/v1/verifications': 'agent',
  'GET /content/:digest': 'agent',
  'GET /admin/v1/jobs': 'admin',
  'GET /admin/v1/jobs/:id': 'admin',
  'GET /admin/v1/redistribute/plans': 'admin',
  'POST /admin/v1/redistribute/plans': 'admin',
  'POST /admin/v1/redistribute/plans/:id/approve': 'admin',
  'POST /admin/v1/redistribute/plans/:id/reject': 'admin',
  'POST /admin/v1/redistribute/submit': 'admin',
  'POST /admin/v1/verify': 'admin',
  'GET /admin/v1/faults': 'admin',
  'POST /admin/v1/faults': 'admin',
  'DELETE /admin/v1/faults': 'admin',
};

/** Which kinds of caller each scope lets through (everyone else gets 401 or 403). */
const ALLOWED: Record<Scope, string[]> = {
  admin: ['admin'],
  events: ['admin'],
  relay: ['relay', 'other relay'],
  content: ['admin', 'relay', 'other relay'],
  'alert-intake': ['admin', 'relay', 'other relay', 'agent', 'other agent'],
  public: ['admin', 'relay', 'other relay', 'agent', 'other agent', 'none', 'expired'],
  agent: ['agent', 'child relay'],
};
/** Beyond reading, what an operator may do in the admin scope (DESIGN §14); viewers only read. */
const OPERATOR_MAY = [
  'POST /api/v1/plans/:id/approve',
  'POST /api/v1/plans/:id/reject',
  'POST /api/v1/relays/:id/plans',
  'POST /api/v1/tickets/:id/resolve',
  'POST /api/v1/tickets/:id/acknowledge',
  'POST /api/v1/tickets/:id/resend',
  'POST /api/v1/outages',
  'DELETE /api/v1/outages/:id',
  'POST /api/v1/devices/verify',
];
const allowed = (scope: Scope, who: string, route: string) => {
  if (who === 'viewer' || who === 'operator') {
    if (scope === 'public') return true;
    if (scope !== 'admin') return false;
    return route.startsWith('GET ') || (who === 'operator' && OPERATOR_MAY.includes(route));
  }
  return ALLOWED[scope].includes(who);
};
const AUTH = ['FANOUT_ERR_AUTH_MISSING', 'FANOUT_ERR_AUTH_INVALID', 'FANOUT_ERR_AUTH_FORBIDDEN'];

const masterRoutes: string[] = [];
const relayRoutes: string[] = [];
let master: Awaited<ReturnType<typeof buildMaster>>;
let relay: Awaited<ReturnType<typeof buildRelay>>;
const tokens: Record<string, string | undefined> = { none: undefined };

const url = (route: string) =>
  route
    .split(' ')[1]
    .replace(':digest', `sha256:${'0'.repeat(64)}`)
    .replace(/:id/g, 'x')
    .replace('/*', '/index.html') + '?wait=0&after=0';

async function outcome(app: { inject: Function }, route: string, token?: string) {
  const method = route.split(' ')[0];
  const res = await app.inject({
    method,
    url: url(route),
    headers: token ? { authorization: `Bearer ${token}` } : {},
    ...(method === 'GET' ? {} : { payload: {} }),
  });
  const code: string | undefined = res.headers['content-type']?.toString().includes('json')
    ? res.json()?.error?.code
    : undefined;
  return { status: res.statusCode as number, refused: AUTH.includes(code ?? '') };
}

beforeAll(async () => {
  const dir = tempDir('matrix');
  master = await buildMaster({
    data: join(dir, 'master'),
    listen: '127.0.0.1:0',
    onRoute: (r) => masterRoutes.push(`${r.method} ${r.url}`),
  });
  const masterUrl = await master.start();
  tokens.admin = readFileSync(join(dir, 'master', 'admin.token'), 'utf8').trim();
  const inv = await master.app.inject({
    method: 'POST',
    url: '/api/v1/inventory',
    headers: { authorization: `Bearer ${tokens.admin}`, 'content-type': 'application/yaml' },
    payload: `${inventoryYaml(['relay-a', 'relay-b'], 1)}  - {id: relay-c, kind: relay, location: LOC-0, upstream: relay-a}\n`,
  });
  const t = Object.fromEntries(inv.json().devices.map((d: { id: string; token: string }) => [d.id, d.token]));
  Object.assign(tokens, {
    relay: t['relay-a'],
    'other relay': t['relay-b'],
    agent: t['relay-a-pos-1'],
    'other agent': t['relay-b-pos-1'],
    'child relay': t['relay-c'],
  });
  // An expired token: one a device had before `fanout device token` re-issued it.
  tokens.expired = t['relay-a-pos-1'];
  const re = await master.app.inject({
    method: 'POST',
    url: '/api/v1/devices/relay-a-pos-1/token',
    headers: { authorization: `Bearer ${tokens.admin}` },
  });
  tokens.agent = re.json().token;
  for (const role of ['viewer', 'operator']) {
    const u = await master.app.inject({
      method: 'POST',
      url: '/api/v1/users',
      headers: { authorization: `Bearer ${tokens.admin}` },
      payload: { name: `a-${role}`, role },
    });
    tokens[role] = u.json().token;
  }
  relay = await buildRelay({
    master: masterUrl,
    id: 'relay-a',
    token: t['relay-a'],
    data: join(dir, 'relay'),
    listen: '127.0.0.1:0',
    onRoute: (r) => relayRoutes.push(`${r.method} ${r.url}`),
  });
  await relay.start();
  tokens['relay admin'] = readFileSync(join(dir, 'relay', 'admin.token'), 'utf8').trim();
});
afterAll(async () => {
  await relay?.stop();
  await master?.stop();
});

describe('route matrix', () => {
  it('every route registered is in the matrix, in its scope, and every entry is a route', () => {
    const missing = (seen: string[], table: Record<string, Scope>) => [
      ...seen.filter((r) => !table[r]).map((r) => `${r}: registered, missing from the matrix`),
      ...Object.keys(table)
        .filter((r) => !seen.includes(r))
        .map((r) => `${r}: in the matrix, not registered`),
    ];
    expect(missing(masterRoutes, MASTER)).toEqual([]);
    expect(missing(relayRoutes, RELAY)).toEqual([]);
    expect(Object.fromEntries(masterRoutes.map((r) => [r, MASTER[r] ?? 'MISSING FROM THE MATRIX']))).toEqual(MASTER);
    expect(Object.fromEntries(relayRoutes.map((r) => [r, RELAY[r] ?? 'MISSING FROM THE MATRIX']))).toEqual(RELAY);
  });

  it('the master: each route with each kind of token (admin, relay, other relay, agent, other agent, none, expired)', async () => {
    const wrong: string[] = [];
    let calls = 0;
    for (const [route, scope] of Object.entries(MASTER)) {
      for (const who of [
        'admin',
        'viewer',
        'operator',
        'relay',
        'other relay',
        'agent',
        'other agent',
        'none',
        'expired',
      ]) {
        // An open event stream; its refusals are checked.
        if (scope === 'events' && ['admin', 'viewer', 'operator'].includes(who)) continue;
        if (route === 'POST /api/v1/keys/rotate' && who === 'admin') continue; // would rotate the key mid-test
        const { refused } = await outcome(master.app, route, tokens[who]);
        calls++;
        if (refused === allowed(scope, who, route))
          wrong.push(`${route} as ${who}: ${refused ? 'refused' : 'let through'}`);
      }
    }
    expect(wrong).toEqual([]);
    expect(calls).toBeGreaterThan(300);
  });

  it('a relay: its agent channel takes only its devices, its admin API only its admin token', async () => {
    const wrong: string[] = [];
    for (const [route, scope] of Object.entries(RELAY))
      for (const who of [
        'relay admin',
        'agent',
        'child relay',
        'other agent',
        'other relay',
        'admin',
        'none',
        'expired',
      ]) {
        const { refused } = await outcome(relay.app, route, tokens[who]);
        const allowed = scope === 'admin' ? who === 'relay admin' : scope === 'public' || ALLOWED[scope].includes(who);
        if (refused === allowed) wrong.push(`${route} as ${who}: ${refused ? 'refused' : 'let through'}`);
      }
    expect(wrong).toEqual([]);
  });
});
