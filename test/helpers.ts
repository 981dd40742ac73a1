// Real processes on loopback for integration tests: start, wait for "listening on", stop.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { BIN, childEnv, type LabProcess, spawnFanout } from '../src/lab/network.ts';
import { Client } from '../src/protocol/client.ts';
import type { Db } from '../src/store/index.ts';

export { BIN };

/** The run's TLS files (test/global-setup.ts): every daemon serves HTTPS, every client is given the CA. */
export const testTls = ():
  | { ca: string; cert: string; key: string; clientCert: string; clientKey: string }
  | undefined => (process.env.FANOUT_TEST_TLS ? JSON.parse(process.env.FANOUT_TEST_TLS) : undefined);
export const serverTlsArgs = () => {
  const t = testTls();
  return t ? ['--tls-cert', t.cert, '--tls-key', t.key] : [];
};
export const caArgs = () => {
  const t = testTls();
  return t ? ['--ca', t.ca] : [];
};

export function tempDir(name: string) {
  return mkdtempSync(join(tmpdir(), `fanout-${name}-`));
}

export type Proc = LabProcess;

const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of running) c.kill('SIGKILL');
});

/** Starts `fanout ARGS…` (see spawnFanout); a test run that ends early takes its processes with it. */
export async function startFanout(
  args: string[],
  opts: { env?: Record<string, string>; logDir: string; name: string; ready?: RegExp; timeoutMs?: number },
): Promise<Proc> {
  const p = await spawnFanout(opts.name, args, opts.logDir, {
    ready: opts.ready,
    env: { FANOUT_LOG_LEVEL: 'info', ...opts.env },
    timeoutMs: opts.timeoutMs ?? 20_000,
  });
  running.add(p.child);
  p.child.once('exit', () => running.delete(p.child));
  return p;
}

/** Runs `fanout ARGS…` to completion. */
export function runFanout(
  args: string[],
  opts: { env?: Record<string, string>; input?: string; timeoutMs?: number; cwd?: string } = {},
) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((res) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: opts.cwd,
      env: childEnv({ FANOUT_CA: testTls()?.ca, ...opts.env }),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.on('exit', (code) => (clearTimeout(timer), res({ code, stdout, stderr })));
    if (opts.input !== undefined) child.stdin.end(opts.input);
    else child.stdin.end();
  });
}

export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined | false>,
  timeoutMs = 30_000,
  everyMs = 200,
): Promise<T> {
  const until = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > until)
      throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await sleep(everyMs);
  }
}

export function writePackage(
  dir: string,
  name: string,
  version: string,
  files: Record<string, string>,
  install?: string,
) {
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, 'fanout.json'),
    JSON.stringify({ name, version, ...(install ? { install: { run: 'install.sh', timeoutSec: 30 } } : {}) }),
  );
  if (install) writeFileSync(join(dir, 'install.sh'), install);
  for (const [f, c] of Object.entries(files)) writeFileSync(join(dir, f), c);
  return dir;
}

/** Writes, builds and pushes a package of these files (under DIR/pkgs), as an operator would. */
export async function pushPackage(
  net: Pick<Network, 'dir' | 'env'>,
  name: string,
  version: string,
  files: Record<string, string>,
  env = net.env,
  install?: string,
) {
  const dir = writePackage(join(net.dir, 'pkgs', `${name}-${version}`), name, version, files, install);
  const built = await runFanout(['package', 'build', dir, '-o', `${dir}.tgz`]);
  if (built.code) throw new Error(`package build ${name}@${version}: ${built.stderr}`);
  const pushed = await runFanout(['package', 'push', `${dir}.tgz`], { env });
  if (pushed.code) throw new Error(`package push ${name}@${version}: ${pushed.stderr}`);
}

export interface Network {
  dir: string;
  master: Proc;
  adminToken: string;
  admin: Client;
  tokens: Record<string, string>;
  relays: Record<string, Proc & { data: string }>;
  agents: Record<string, Proc & { data: string; root: string }>;
  env: Record<string, string>;
  /** `masters`: the masters the relay is given, in order (default: this network's master). */
  startRelay(
    id: string,
    extra?: string[],
    env?: Record<string, string>,
    masters?: string[],
  ): Promise<Proc & { data: string }>;
  startAgent(
    id: string,
    relayId: string,
    env?: Record<string, string>,
    extra?: string[],
  ): Promise<Proc & { data: string; root: string }>;
  stopAll(): Promise<void>;
}

export function inventoryYaml(relays: string[], agentsPerRelay: number, smtpEmail = 'south-ops@example.test') {
  const lines = [
    'centers:',
    '  - id: mc-south',
    '    name: South Field Services',
    `    email: [${smtpEmail}]`,
    '  - id: mc-north',
    '    name: North Field Services',
    '    email: [north-ops@example.test]',
    'locations:',
    ...relays.flatMap((_r, i) => [
      `  - code: LOC-${i}`,
      `    name: Store ${String(i + 42).padStart(4, '0')}, ${i % 2 ? 'Denver, CO' : 'Dallas, TX'}`,
      `    center: ${i % 2 ? 'mc-north' : 'mc-south'}`,
    ]),
    'devices:',
    ...relays.flatMap((r, i) => [
      `  - id: ${r}`,
      '    kind: relay',
      `    location: LOC-${i}`,
      '    upstream: master',
      ...Array.from({ length: agentsPerRelay }, (_, k) => [
        `  - id: ${r}-pos-${k + 1}`,
        '    kind: endpoint',
        `    location: LOC-${i}`,
        `    relay: ${r}`,
        '    labels: {role: pos}',
      ]).flat(),
    ]),
  ];
  return lines.join('\n') + '\n';
}

export async function startNetwork(o: {
  name: string;
  relays: string[];
  agentsPerRelay: number;
  config?: string;
  masterArgs?: string[];
  startAgents?: boolean;
  heartbeatMs?: number;
}): Promise<Network> {
  const dir = tempDir(o.name);
  const logDir = join(dir, 'logs');
  const mdata = join(dir, 'master');
  mkdirSync(mdata, { recursive: true });
  if (o.config) writeFileSync(join(mdata, 'fanout.yaml'), o.config);
  const master = await startFanout(
    [
      'master',
      '--data',
      mdata,
      '--listen',
      '127.0.0.1:0',
      '--allow-faults',
      ...serverTlsArgs(),
      ...caArgs(),
      ...(o.masterArgs ?? []),
    ],
    { logDir, name: 'master' },
  );
  const adminToken = readFileSync(join(mdata, 'admin.token'), 'utf8').trim();
  const admin = new Client({ baseUrl: master.url, token: adminToken });
  const env: Record<string, string> = { FANOUT_MASTER: master.url, FANOUT_TOKEN_FILE: join(mdata, 'admin.token') };
  writeFileSync(join(dir, 'inventory.yaml'), inventoryYaml(o.relays, o.agentsPerRelay));
  const imp = await runFanout(['inventory', 'import', join(dir, 'inventory.yaml'), '--json'], { env });
  if (imp.code !== 0) throw new Error(`inventory import failed: ${imp.stderr}`);
  const tokens: Record<string, string> = Object.fromEntries(
    JSON.parse(imp.stdout).devices.map((d: { id: string; token: string }) => [d.id, d.token]),
  );
  // Device tokens in 0600 files, as an operator keeps them: never on a command line.
  mkdirSync(join(dir, 'tokens'), { recursive: true });
  const tokenFile = (id: string) => {
    const f = join(dir, 'tokens', `${id}.token`);
    writeFileSync(f, `${tokens[id]}\n`, { mode: 0o600 });
    return f;
  };
  const net: Network = {
    dir,
    master,
    adminToken,
    admin,
    tokens,
    relays: {},
    agents: {},
    env,
    async startRelay(id, extra = [], renv = {}, masters = [net.master.url]) {
      const data = join(dir, id);
      const p = await startFanout(
        [
          'relay',
          ...masters.flatMap((m) => ['--master', m]),
          '--id',
          id,
          '--token-file',
          tokenFile(id),
          '--data',
          data,
          '--listen',
          '127.0.0.1:0',
          '--allow-faults',
          '--heartbeat-ms',
          String(o.heartbeatMs ?? 1000),
          ...serverTlsArgs(),
          ...caArgs(),
          ...extra,
        ],
        { logDir, name: id, env: renv },
      );
      return (net.relays[id] = Object.assign(p, { data }));
    },
    async startAgent(id, relayId, aenv = {}, extra = []) {
      const data = join(dir, 'agents', id, 'data');
      const root = join(dir, 'agents', id, 'root');
      const p = await startFanout(
        [
          'agent',
          '--relay',
          net.relays[relayId].url,
          '--id',
          id,
          '--token-file',
          tokenFile(id),
          '--data',
          data,
          '--root',
          root,
          '--allow-faults',
          ...caArgs(),
          ...extra,
        ],
        { logDir, name: id, env: aenv },
      );
      return (net.agents[id] = Object.assign(p, { data, root }));
    },
    async stopAll() {
      await Promise.all([...Object.values(net.agents), ...Object.values(net.relays)].map((p) => p.stop()));
      await net.master.stop();
    },
  };
  for (const r of o.relays) await net.startRelay(r);
  if (o.startAgents !== false)
    await Promise.all(
      o.relays.flatMap((r) =>
        Array.from({ length: o.agentsPerRelay }, (_, k) => net.startAgent(`${r}-pos-${k + 1}`, r)),
      ),
    );
  return net;
}

/** The network's endpoint tokens as `ID TOKEN` lines (what `fanout swarm --tokens` reads), mode 0600. */
export function writeEndpointTokens(net: Network, file: string) {
  writeFileSync(
    file,
    Object.entries(net.tokens)
      .filter(([id]) => id.includes('-pos-'))
      .map(([id, t]) => `${id} ${t}\n`)
      .join(''),
    { mode: 0o600 },
  );
  return file;
}

/** One ticket mail in the outbox, due at once, for ops@example.test: what the mailer sends next. */
export const queueMail = (db: Db, ticketId: string, subject = ticketId) =>
  db
    .insertInto('outbox')
    .values({
      ticket_id: ticketId,
      recipients: '["ops@example.test"]',
      subject,
      body: 'b',
      attempts: 0,
      next_at: '2000-01-01T00:00:00.000Z',
      state: 'pending',
      last_error: null,
    })
    .execute();
