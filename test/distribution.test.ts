// Issue 2: master → 2 relays → 6 agents as real processes; tampering, escaping archives, relay crash.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tar from 'tar';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client } from '../src/protocol/client.ts';
import { JobLog } from '../src/relay/joblog.ts';
import { type Network, runFanout, startNetwork, waitFor, writePackage } from './helpers.ts';

let net: Network;
const relays = ['relay-a', 'relay-b'];
const endpoints = relays.flatMap((r) => [1, 2, 3].map((k) => `${r}-pos-${k}`));

async function buildAndPush(dir: string) {
  const file = `${dir}.tgz`;
  const b = await runFanout(['package', 'build', dir, '-o', file, '--json']);
  expect(b.code, b.stderr).toBe(0);
  const p = await runFanout(['package', 'push', file, '--json'], { env: net.env });
  expect(p.code, p.stderr).toBe(0);
  return JSON.parse(p.stdout) as { name: string; version: string; digest: string; size: number };
}

async function _jobStatus(jobId: string) {
  const r = await runFanout(['job', 'status', jobId, '--json'], { env: net.env });
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as {
    jobId: string;
    state: string;
    targets: { deviceId: string; relayId: string; state: string; failureType: string | null; error: string | null }[];
  };
}

beforeAll(async () => {
  net = await startNetwork({ name: 'dist', relays, agentsPerRelay: 3 });
});
afterAll(async () => {
  await net?.stopAll();
});

describe('distribution path', () => {
  it('installs a job of two packages on every target, with files in each agent root', async () => {
    const app = writePackage(
      join(net.dir, 'pkgs', 'pos-app'),
      'pos-app',
      '2.4.1',
      { 'app.txt': 'pos app 2.4.1\n' },
      '#!/bin/sh\necho "$FANOUT_PACKAGE $FANOUT_VERSION $FANOUT_JOB" > installed-by-script.txt\n',
    );
    const cfg = writePackage(join(net.dir, 'pkgs', 'pos-config'), 'pos-config', '1.0.0', {
      'config.ini': '[pos]\nmode=store\n',
    });
    const sizes = (await buildAndPush(app)).size + (await buildAndPush(cfg)).size;
    const c = await runFanout(
      ['job', 'create', '--package', 'pos-app@2.4.1', '--package', 'pos-config@1.0.0', '--label', 'role=pos', '--json'],
      { env: net.env },
    );
    expect(c.code, c.stderr).toBe(0);
    const { jobId } = JSON.parse(c.stdout);
    const w = await runFanout(['job', 'wait', jobId, '--timeout', '60', '--json'], { env: net.env, timeoutMs: 90_000 });
    expect(w.code, w.stdout + w.stderr).toBe(0);
    const st = JSON.parse(w.stdout);
    expect(st.state).toBe('complete');
    expect(st.targets.map((t: { deviceId: string }) => t.deviceId).sort()).toEqual([...endpoints].sort());
    for (const t of st.targets) expect(t.state).toBe('installed');
    for (const id of endpoints) {
      const root = net.agents[id].root;
      expect(readFileSync(join(root, 'pos-app', 'current', 'app.txt'), 'utf8')).toBe('pos app 2.4.1\n');
      expect(readFileSync(join(root, 'pos-app', '2.4.1', 'installed-by-script.txt'), 'utf8').trim()).toBe(
        `pos-app 2.4.1 ${jobId}`,
      );
      expect(readFileSync(join(root, 'pos-config', 'current', 'config.ini'), 'utf8')).toContain('mode=store');
      const installed = JSON.parse(readFileSync(join(net.agents[id].data, 'installed.json'), 'utf8'));
      expect(Object.keys(installed).sort()).toEqual(['pos-app@2.4.1', 'pos-config@1.0.0']);
    }
    // The relay's job log starts with the command and records the fetches and every target.
    const log = new JobLog(net.relays['relay-a'].data).read(jobId);
    expect(log[0].type).toBe('command');
    expect(log.filter((r) => r.type === 'fetch' && r.event === 'verified')).toHaveLength(2);
    expect(log.at(-1)?.type).toBe('complete');
    // Each relay sent both packages once to each of its three endpoints, and counted it.
    for (const r of relays) {
      const metrics = await (await fetch(`${net.relays[r].url}/metrics`)).text();
      expect(Number(/^fanout_relay_content_bytes_served_total (\d+)/m.exec(metrics)?.[1])).toBe(3 * sizes);
    }
  });

  it('re-installing a version that is installed runs nothing again', async () => {
    const c = await runFanout(['job', 'create', '--package', 'pos-app@2.4.1', '--target', 'relay-a-pos-1', '--json'], {
      env: net.env,
    });
    const { jobId } = JSON.parse(c.stdout);
    const w = await runFanout(['job', 'wait', jobId, '--timeout', '30', '--json'], { env: net.env });
    expect(w.code, w.stderr).toBe(0);
    const script = readFileSync(
      join(net.agents['relay-a-pos-1'].root, 'pos-app', '2.4.1', 'installed-by-script.txt'),
      'utf8',
    );
    expect(script).not.toContain(jobId);
  });

  it('refuses a tampered blob with a clear error and failed targets', async () => {
    const dir = writePackage(join(net.dir, 'pkgs', 'tampered'), 'tampered', '1.0.0', { 'data.bin': 'x'.repeat(5000) });
    const pkg = await buildAndPush(dir);
    const hex = pkg.digest.slice(7);
    const blob = join(net.dir, 'master', 'blobs', 'sha256', hex.slice(0, 2), hex);
    const bytes = readFileSync(blob);
    bytes[bytes.length - 10] ^= 0xff;
    writeFileSync(blob, bytes);
    const c = await runFanout(
      [
        'job',
        'create',
        '--package',
        'tampered@1.0.0',
        '--target',
        'relay-b-pos-1',
        '--target',
        'relay-b-pos-2',
        '--json',
      ],
      { env: net.env },
    );
    const { jobId } = JSON.parse(c.stdout);
    const w = await runFanout(['job', 'wait', jobId, '--timeout', '30', '--json'], { env: net.env });
    expect(w.code).toBe(1);
    const st = JSON.parse(w.stdout);
    expect(st.state).toBe('failed');
    for (const t of st.targets) {
      expect(t.state).toBe('failed');
      expect(t.failureType).toBe('DIGEST_MISMATCH');
      expect(t.error).toMatch(/digest mismatch/);
    }
    expect(existsSync(join(net.agents['relay-b-pos-1'].root, 'tampered'))).toBe(false);
  });

  it('refuses an archive whose entries escape the package folder', async () => {
    const dir = join(net.dir, 'pkgs', 'escape');
    mkdirSync(join(dir, 'sub'), { recursive: true });
    writeFileSync(join(dir, 'fanout.json'), JSON.stringify({ name: 'escape', version: '1.0.0' }));
    writeFileSync(join(dir, 'sub', 'evil.txt'), 'owned\n');
    const file = `${dir}.tgz`;
    // Hand-made hostile archive: an entry named ../../evil.txt, written with preservePaths.
    await tar.c(
      {
        gzip: true,
        file,
        cwd: dir,
        portable: true,
        preservePaths: true,
        onWriteEntry: (e: { path: string }) => {
          if (e.path === 'sub/evil.txt') e.path = '../../evil.txt';
        },
      } as never,
      ['fanout.json', 'sub/evil.txt'],
    );
    // The master refuses it at push, with the path: no relay or endpoint ever gets it.
    const p = await runFanout(['package', 'push', file, '--json'], { env: net.env });
    expect(p.code).toBe(1);
    expect(p.stderr).toMatch(/"\.\.\/\.\.\/evil\.txt" escapes the package folder/);
    expect(p.stderr).toContain('FANOUT_ERR_PACKAGE_INVALID');
    const list = await runFanout(['package', 'list', '--json'], { env: net.env });
    expect(JSON.parse(list.stdout).map((x: { name: string }) => x.name)).not.toContain('escape');
    const c = await runFanout(['job', 'create', '--package', 'escape@1.0.0', '--target', 'relay-a-pos-2'], {
      env: net.env,
    });
    expect(c.stderr).toMatch(/escape@1\.0\.0 was never pushed/);
  });

  it("rejects requests without a valid token, and a relay cannot read another relay's commands", async () => {
    const r = await fetch(`${net.master.url}/api/v1/jobs`, { headers: { authorization: 'Bearer nope' } });
    expect(r.status).toBe(401);
    expect((await r.json()).error.code).toBe('FANOUT_ERR_AUTH_INVALID');
    const asRelay = await fetch(`${net.master.url}/api/v1/jobs`, {
      headers: { authorization: `Bearer ${net.tokens['relay-a']}` },
    });
    expect(asRelay.status).toBe(403);
    const cmds = await fetch(`${net.master.url}/api/v1/relay/commands?after=0&wait=0`, {
      headers: { authorization: `Bearer ${net.tokens['relay-a']}` },
    });
    const body = await cmds.json();
    // Delivered and acknowledged commands are not sent again; whatever is open is relay-a's own.
    expect(body.commands.every((c: { relayId: string }) => c.relayId === 'relay-a')).toBe(true);
    const agentAtMaster = await fetch(`${net.master.url}/api/v1/relay/commands`, {
      headers: { authorization: `Bearer ${net.tokens['relay-a-pos-1']}` },
    });
    expect(agentAtMaster.status).toBe(403);
  });

  it('a relay killed mid-transfer finishes from its job log without fetching verified content again', async () => {
    const small = await buildAndPush(
      writePackage(join(net.dir, 'pkgs', 'small'), 'small', '1.0.0', { 'a.txt': 'small\n' }),
    );
    const bigDir = writePackage(join(net.dir, 'pkgs', 'big'), 'big', '1.0.0', {});
    // Incompressible content so the archive stays large.
    writeFileSync(
      join(bigDir, 'blob.bin'),
      Buffer.from(Array.from({ length: 600 * 1024 }, () => Math.floor(Math.random() * 256))),
    );
    const big = await buildAndPush(bigDir);
    const c = await runFanout(
      [
        'job',
        'create',
        '--package',
        'small@1.0.0',
        '--package',
        'big@1.0.0',
        '--target',
        'relay-b-pos-3',
        '--param',
        'rateLimitKBps=150',
        '--json',
      ],
      { env: net.env },
    );
    const { jobId } = JSON.parse(c.stdout);
    const relay = net.relays['relay-b'];
    const part = join(relay.data, 'depot', 'sha256', big.digest.slice(7, 9), big.digest.slice(7) + '.part');
    await waitFor(
      'a partial download of the big package',
      async () => existsSync(part) && readFileSync(part).length > 100 * 1024,
      30_000,
      50,
    );
    await relay.kill();
    const before = readFileSync(part).length;
    expect(before).toBeLessThan(big.size);
    const logBefore = new JobLog(relay.data).read(jobId);
    expect(logBefore.some((r) => r.type === 'fetch' && r.event === 'verified' && r.digest === small.digest)).toBe(true);
    // Same address again, as a relay host would come back: its agents keep their --relay URL.
    await net.startRelay('relay-b', ['--listen', new URL(relay.url).host]);
    const w = await runFanout(['job', 'wait', jobId, '--timeout', '60', '--json'], { env: net.env, timeoutMs: 90_000 });
    expect(w.code, w.stdout + w.stderr).toBe(0);
    const log = new JobLog(relay.data).read(jobId);
    const starts = log.filter((r) => r.type === 'fetch' && r.event === 'started');
    expect(starts.filter((r) => r.type === 'fetch' && r.digest === small.digest)).toHaveLength(1);
    const bigStarts = starts.filter((r) => r.type === 'fetch' && r.digest === big.digest);
    expect(bigStarts).toHaveLength(2);
    expect((bigStarts[1] as { from: number }).from).toBe(before);
    // The small package came from the master once; the big one's second fetch asked only for the rest.
    const metrics = await (await fetch(`${net.master.url}/metrics`)).text();
    const served = (d: string) =>
      Number(new RegExp(`fanout_blob_bytes_served_total\\{digest="${d}"\\} (\\d+)`).exec(metrics)?.[1]);
    expect(served(small.digest)).toBe(small.size);
    const verifiedBig = log.find((r) => r.type === 'fetch' && r.event === 'verified' && r.digest === big.digest) as {
      bytes: number;
    };
    expect(verifiedBig.bytes).toBe(big.size - before);
    expect(readFileSync(join(net.agents['relay-b-pos-3'].root, 'big', 'current', 'blob.bin')).length).toBe(600 * 1024);
  });

  it('ends targets that miss the deadline as failed (DEADLINE), definitely', async () => {
    await net.agents['relay-a-pos-3'].stop();
    try {
      const c = await runFanout(
        [
          'job',
          'create',
          '--package',
          'pos-config@1.0.0',
          '--target',
          'relay-a-pos-3',
          '--param',
          'deadline=3s',
          '--json',
        ],
        { env: net.env },
      );
      expect(c.code, c.stderr).toBe(0);
      const { jobId } = JSON.parse(c.stdout);
      const w = await runFanout(['job', 'wait', jobId, '--timeout', '30', '--json'], { env: net.env });
      expect(w.code).toBe(1);
      expect(JSON.parse(w.stdout).targets[0]).toMatchObject({ state: 'failed', failureType: 'DEADLINE' });
    } finally {
      await net.startAgent('relay-a-pos-3', 'relay-a');
    }
  });

  it('a relay whose upstream is another relay gets content through it', async () => {
    writeFileSync(
      join(net.dir, 'child.yaml'),
      [
        'devices:',
        '  - {id: relay-c, kind: relay, location: LOC-0, upstream: relay-a}',
        '  - {id: relay-c-pos-1, kind: endpoint, location: LOC-0, relay: relay-c, labels: {role: kiosk}}',
      ].join('\n') + '\n',
    );
    const imp = await runFanout(['inventory', 'import', join(net.dir, 'child.yaml'), '--json'], { env: net.env });
    expect(imp.code, imp.stderr).toBe(0);
    for (const d of JSON.parse(imp.stdout).devices) net.tokens[d.id] = d.token;
    await net.startRelay('relay-c', ['--upstream', net.relays['relay-a'].url]);
    await net.startAgent('relay-c-pos-1', 'relay-c');
    const pkg = await buildAndPush(
      writePackage(join(net.dir, 'pkgs', 'kiosk'), 'kiosk', '0.9.0', { 'k.txt': 'kiosk\n' }),
    );
    const before = await (await fetch(`${net.master.url}/metrics`)).text();
    const c = await runFanout(['job', 'create', '--package', 'kiosk@0.9.0', '--label', 'role=kiosk', '--json'], {
      env: net.env,
    });
    const { jobId } = JSON.parse(c.stdout);
    const w = await runFanout(['job', 'wait', jobId, '--timeout', '30', '--json'], { env: net.env });
    expect(w.code, w.stdout + w.stderr).toBe(0);
    expect(readFileSync(join(net.agents['relay-c-pos-1'].root, 'kiosk', 'current', 'k.txt'), 'utf8')).toBe('kiosk\n');
    // The parent fetched it from the master, verified it and kept it in its depot.
    const hex = pkg.digest.slice(7);
    expect(existsSync(join(net.relays['relay-a'].data, 'depot', 'sha256', hex.slice(0, 2), hex))).toBe(true);
    expect(before).not.toContain(pkg.digest);
  });

  it('kills an install script that runs past its timeout and reports it', async () => {
    await buildAndPush(writePackage(join(net.dir, 'pkgs', 'slow'), 'slow', '1.0.0', {}, '#!/bin/sh\nsleep 30\n'));
    const c = await runFanout(
      [
        'job',
        'create',
        '--package',
        'slow@1.0.0',
        '--target',
        'relay-b-pos-2',
        '--param',
        'timeoutSec=1',
        '--param',
        'maxAttempts=1',
        '--json',
      ],
      { env: net.env },
    );
    const { jobId } = JSON.parse(c.stdout);
    const w = await runFanout(['job', 'wait', jobId, '--timeout', '30', '--json'], { env: net.env });
    expect(w.code).toBe(1);
    const t = JSON.parse(w.stdout).targets[0];
    expect(t).toMatchObject({ state: 'failed', failureType: 'INSTALL_TIMEOUT' });
    expect(t.error).toMatch(/did not finish within 1s/);
    // `current` was never switched to the version whose install did not finish.
    expect(existsSync(join(net.agents['relay-b-pos-2'].root, 'slow', 'current'))).toBe(false);
  });

  it('stops the scripts a killed agent cut off and runs them again, told so; a failed run is retried untold', async () => {
    const id = 'relay-b-pos-3';
    const runs = (name: string) => join(net.agents[id].root, name, 'runs.log');
    const script = (rest: string) => `#!/bin/sh\necho "run \${FANOUT_INTERRUPTED:-0}" >> ../runs.log\n${rest}`;
    await buildAndPush(
      writePackage(
        join(net.dir, 'pkgs', 'cut'),
        'cut',
        '1.0.0',
        { 'c.txt': 'c\n' },
        script('[ -n "$FANOUT_INTERRUPTED" ] || { sleep 2; echo late >> ../runs.log; }\n'),
      ),
    );
    const c = await runFanout(['job', 'create', '--package', 'cut@1.0.0', '--target', id, '--json'], { env: net.env });
    const { jobId } = JSON.parse(c.stdout);
    await waitFor('the first run of the script', async () => existsSync(runs('cut')));
    await net.agents[id].kill();
    await net.startAgent(id, 'relay-b');
    const w = await runFanout(['job', 'wait', jobId, '--timeout', '60'], { env: net.env, timeoutMs: 90_000 });
    expect(w.code, w.stdout + w.stderr).toBe(0);
    // The cut-off run was stopped before the second began: it never gets to write "late".
    await new Promise((r) => setTimeout(r, 2500));
    expect(readFileSync(runs('cut'), 'utf8')).toBe('run 0\nrun 1\n');
    expect(readFileSync(join(net.dir, 'logs', `${id}.log`), 'utf8')).toMatch(/cut off when the agent stopped/);
    expect(existsSync(join(net.agents[id].root, 'cut', '.installing-1.0.0'))).toBe(false);

    // A run that failed, seen to its end, is not an interrupted one.
    await buildAndPush(
      writePackage(
        join(net.dir, 'pkgs', 'once'),
        'once',
        '1.0.0',
        {},
        script('[ -e ../failed ] || { touch ../failed; exit 1; }\n'),
      ),
    );
    const c2 = await runFanout(['job', 'create', '--package', 'once@1.0.0', '--target', id, '--json'], {
      env: net.env,
    });
    const w2 = await runFanout(['job', 'wait', JSON.parse(c2.stdout).jobId, '--timeout', '60'], {
      env: net.env,
      timeoutMs: 90_000,
    });
    expect(w2.code, w2.stdout + w2.stderr).toBe(0);
    expect(readFileSync(runs('once'), 'utf8')).toBe('run 0\nrun 0\n');
  });

  it('rides out an upstream that resets the connection twice', async () => {
    const relay = net.relays['relay-b'];
    const relayAdmin = new Client({
      baseUrl: relay.url,
      token: readFileSync(join(relay.data, 'admin.token'), 'utf8').trim(),
    });
    await relayAdmin.post('admin/v1/faults', { 'relay.upstream.fetch': 'ECONNRESET:2' });
    await buildAndPush(writePackage(join(net.dir, 'pkgs', 'flaky'), 'flaky', '1.0.0', { 'f.txt': 'f\n' }));
    const c = await runFanout(['job', 'create', '--package', 'flaky@1.0.0', '--target', 'relay-b-pos-1', '--json'], {
      env: net.env,
    });
    const { jobId } = JSON.parse(c.stdout);
    const w = await runFanout(['job', 'wait', jobId, '--timeout', '60', '--json'], { env: net.env, timeoutMs: 90_000 });
    expect(w.code, w.stdout).toBe(0);
    expect(await relayAdmin.get('admin/v1/faults')).toEqual({});
    expect(readFileSync(relay.logFile, 'utf8')).toMatch(/upstream fetch failed; resuming after a pause/);
  });

  it('a re-issued device token stops working at the relay as soon as the master tells it, the new one works', async () => {
    const relay = net.relays['relay-a'];
    const old = net.tokens['relay-a-pos-1'];
    const enroll = (token: string) =>
      fetch(`${relay.url}/agent/v1/enroll`, { headers: { authorization: `Bearer ${token}` } });
    expect((await enroll(old)).status).toBe(200);
    const told = () => readFileSync(relay.logFile, 'utf8').match(/inventory changed at the master/g)?.length ?? 0;
    const before = told();
    const r = await runFanout(['device', 'token', 'relay-a-pos-1', '--json'], { env: net.env });
    const fresh = JSON.parse(r.stdout).token as string;
    // Told through its long-poll for commands, not found at its next periodic refresh.
    await waitFor('the relay told of the change', async () => told() > before, 15_000, 100);
    expect((await enroll(old)).status).toBe(401);
    expect((await enroll(fresh)).status).toBe(200);
  });
});
