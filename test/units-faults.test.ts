// Bugs of issue 9 that need a clock, a bad archive or a dying peer to show: each has its test here.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { basename, join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { installPackage, stagingFor } from '../src/agent/install.ts';
import { run } from '../src/agent/scripts.ts';
import { sendBlob } from '../src/common/content.ts';
import { ContentCache } from '../src/common/content-cache.ts';
import { Faults } from '../src/common/faults.ts';
import { createLogger } from '../src/common/log.ts';
import { createHttpServer } from '../src/common/server.ts';
import { spawnFanout } from '../src/lab/network.ts';
import { relayAnswer } from '../src/master/plans.ts';
import { inspectArchive } from '../src/protocol/archive.ts';
import { Client, HttpError } from '../src/protocol/client.ts';
import { FanoutError } from '../src/protocol/errors.ts';
import { MAX_ALERTS_PER_REQUEST } from '../src/protocol/limits.ts';
import { buildPackage } from '../src/protocol/package-file.ts';
import type { DistributionCommand } from '../src/protocol/types.ts';
import { Deadlines } from '../src/relay/deadlines.ts';
import { Reporter } from '../src/relay/reporter.ts';
import { tempDir, writePackage } from './helpers.ts';

afterEach(() => vi.useRealTimers());

/** Descriptors of this process open on `path` (the test's own sockets do not count). */
const fdsOn = (path: string) =>
  readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`).replace(/ \(deleted\)$/, '') === path;
    } catch {
      return false;
    }
  }).length;

describe('issue 9, one test per bug', () => {
  it('a deadline 30 days out fires after 30 days, not at once (timers take at most ~24.8 days)', () => {
    vi.useFakeTimers({ now: Date.parse('2026-01-01T00:00:00Z') });
    const fired: string[] = [];
    const d = new Deadlines((jobId) => fired.push(jobId));
    const cmd = {
      kind: 'distribute',
      commandId: 'c',
      issuedAt: '2026-01-01T00:00:00.000Z',
      params: { deadline: '30d' },
    } as unknown as DistributionCommand;
    d.arm('j-1', cmd, 3_600_000);
    vi.advanceTimersByTime(25 * 86_400_000);
    expect(fired).toEqual([]);
    vi.advanceTimersByTime(5 * 86_400_000 + 1000);
    expect(fired).toEqual(['j-1']);
    d.stop();
  });

  it('a package refused after extraction leaves no staging folder behind', async () => {
    const dir = writePackage(join(tempDir('staging'), 'p'), 'pos-app', '1.0.0', { 'a.txt': 'a\n' });
    const built = await buildPackage(dir, `${dir}.tgz`);
    const root = tempDir('staging-root');
    const pkg = { name: 'other-name', version: '1.0.0', digest: built.digest, size: built.size, signature: 's' };
    const dir2 = stagingFor(root, pkg);
    const staged = { dir: dir2, extracted: await inspectArchive(built.file, undefined, dir2) };
    expect(readdirSync(root)).toEqual([basename(dir2)]);
    expect(basename(dir2)).toMatch(new RegExp(`^\\.staging-other-name-1\\.0\\.0-${process.pid}-\\d+$`));
    await expect(
      installPackage({ staged, pkg, root, jobId: 'j', params: {}, faults: new Faults(false) }),
    ).rejects.toThrow(/archive says pos-app@1\.0\.0/);
    expect(readdirSync(root)).toEqual([]);
  });

  it("a relay's refusal of a stale plan reaches the operator as 409 with its reason, not 500", async () => {
    const refused = Promise.reject(
      new HttpError(409, 'FANOUT_ERR_PLAN_STATE', 'plan p-1: it is superseded, not pending'),
    );
    const err = await relayAnswer('relay-a', refused).catch((e) => e);
    expect(err).toBeInstanceOf(FanoutError);
    expect(err.statusCode).toBe(409);
    expect(err.toJSON().error).toEqual({
      code: 'FANOUT_ERR_PLAN_STATE',
      message: 'relay relay-a: plan p-1: it is superseded, not pending',
    });
    const silent = await relayAnswer('relay-a', Promise.reject(new HttpError(0, 'ECONNREFUSED', 'cannot reach'))).catch(
      (e) => e,
    );
    expect(silent.statusCode).toBe(502);
  });

  it('a daemon that misses its start limit is stopped, not left running', async () => {
    const dir = tempDir('start-limit');
    const err = await spawnFanout(
      'never-ready',
      [
        'agent',
        '--relay',
        'http://127.0.0.1:9',
        '--id',
        'x',
        '--token',
        't',
        '--data',
        join(dir, 'd'),
        '--root',
        join(dir, 'r'),
      ],
      dir,
      { timeoutMs: 1500 },
    ).catch((e) => e);
    expect(err.message).toMatch(/did not start within 1\.5 s/);
    // No process with its (unique) data folder on the command line is left.
    await new Promise((r) => setTimeout(r, 300));
    const left = spawnSync('pgrep', ['-f', join(dir, 'd')], { encoding: 'utf8' }).stdout.trim();
    expect(left).toBe('');
    expect(existsSync(join(dir, 'never-ready.log'))).toBe(true);
  });

  it('an install script starts only once the agent has written down its process, and never if it could not', async () => {
    const dir = tempDir('gate');
    const script = join(dir, 'install.sh');
    writeFileSync(script, 'echo ran >> ran.txt\n');
    const ran = () => (existsSync(join(dir, 'ran.txt')) ? readFileSync(join(dir, 'ran.txt'), 'utf8') : '');
    const opts = { cwd: dir, env: process.env, timeoutMs: 10_000, label: 'install script install.sh' };
    const seenWhileWriting: string[] = [];
    await run('/bin/sh', [script], {
      ...opts,
      onSpawn: () => {
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 300); // a slow disk under the marker
        seenWhileWriting.push(ran());
      },
    });
    expect(seenWhileWriting).toEqual(['']);
    expect(ran()).toBe('ran\n');
    const err = await run('/bin/sh', [script], {
      ...opts,
      onSpawn: () => {
        throw new Error('ENOSPC: no space left on device');
      },
    }).catch((e) => e);
    expect(err.message).toBe('install script install.sh was not started: ENOSPC: no space left on device');
    await new Promise((r) => setTimeout(r, 300));
    expect(ran()).toBe('ran\n');
  });
});

describe('issue 14, bugs found at fleet size', () => {
  it('a blob whose file cannot be read mid-way answers a JSON error, not a 500 about its payload type', async () => {
    const dir = tempDir('blob-err');
    mkdirSync(join(dir, 'not-a-file')); // stat says a size; reading it fails (EISDIR), as EMFILE would
    const { Registry } = await import('prom-client');
    const app = createHttpServer({ logger: createLogger('test'), registry: new Registry() });
    app.get('/blob', (req, reply) => sendBlob(req, reply, join(dir, 'not-a-file')));
    const res = await app.inject({ method: 'GET', url: '/blob' });
    await app.close();
    expect(res.statusCode).toBe(500);
    expect(res.headers['content-type']).toMatch(/application\/json/);
    expect(res.json().error.code).toBe('FANOUT_ERR_INTERNAL');
    expect(res.json().error.message).toMatch(/EISDIR/);
  });

  it('a file is served whole, by range and to HEAD through the reused buffers, with every byte right', async () => {
    const dir = tempDir('blob-pump');
    const bytes = randomBytes(1_300_000); // three buffers' worth and a bit
    writeFileSync(join(dir, 'blob'), bytes);
    let counted = 0;
    const { Registry } = await import('prom-client');
    const app = createHttpServer({ logger: createLogger('test'), registry: new Registry() });
    app.get('/blob', (req, reply) => sendBlob(req, reply, join(dir, 'blob'), (n) => (counted += n)));
    const whole = await app.inject({ method: 'GET', url: '/blob' });
    expect(whole.statusCode).toBe(200);
    expect(whole.headers['content-length']).toBe(String(bytes.length));
    expect(whole.rawPayload.equals(bytes)).toBe(true);
    const part = await app.inject({ method: 'GET', url: '/blob', headers: { range: 'bytes=524000-1048700' } });
    expect(part.statusCode).toBe(206);
    expect(part.headers['content-range']).toBe(`bytes 524000-1048700/${bytes.length}`);
    expect(part.rawPayload.equals(bytes.subarray(524000, 1048701))).toBe(true);
    const tail = await app.inject({ method: 'GET', url: '/blob', headers: { range: `bytes=${bytes.length - 1}-` } });
    expect(tail.rawPayload.equals(bytes.subarray(-1))).toBe(true);
    const head = await app.inject({ method: 'HEAD', url: '/blob' });
    expect(head.headers['content-length']).toBe(String(bytes.length));
    expect(head.rawPayload.length).toBe(0);
    await app.close();
    expect(counted).toBe(bytes.length + (1048701 - 524000) + 1);
  });

  it('a client that goes away mid-download leaves no file open behind it', async () => {
    const dir = tempDir('blob-gone');
    writeFileSync(join(dir, 'blob'), randomBytes(32 * 1024 * 1024));
    const { Registry } = await import('prom-client');
    const app = createHttpServer({ logger: createLogger('test'), registry: new Registry() });
    app.get('/blob', (req, reply) => sendBlob(req, reply, join(dir, 'blob')));
    const url = await app.listen({ host: '127.0.0.1', port: 0 });
    const openOnBlob = () => fdsOn(join(dir, 'blob'));
    for (let i = 0; i < 20; i++) {
      const ac = new AbortController();
      const res = await fetch(`${url}/blob`, { signal: ac.signal });
      const reader = res.body!.getReader();
      await reader.read(); // some of it, then gone
      // The file is open while it is being sent (so the count below can see a leak).
      if (i === 0) expect(openOnBlob()).toBe(1);
      ac.abort();
    }
    await vi.waitFor(() => expect(openOnBlob()).toBe(0), { timeout: 10_000, interval: 100 });
    await app.close();
  });

  it('downloads of one file in flight share one descriptor; a file put in its place is opened afresh', async () => {
    // One each passed a relay's descriptor limit at 10,000 endpoints, beside their connections (EMFILE).
    const dir = tempDir('blob-shared');
    const path = join(dir, 'blob');
    const first = randomBytes(32 * 1024 * 1024);
    writeFileSync(path, first);
    const { Registry } = await import('prom-client');
    const app = createHttpServer({ logger: createLogger('test'), registry: new Registry() });
    app.get('/blob', (req, reply) => sendBlob(req, reply, path));
    const url = await app.listen({ host: '127.0.0.1', port: 0 });
    const held = [];
    for (let i = 0; i < 12; i++) {
      const ac = new AbortController();
      const res = await fetch(`${url}/blob`, { signal: ac.signal });
      const reader = res.body!.getReader();
      expect((await reader.read()).value!.subarray(0, 16)).toEqual(new Uint8Array(first.subarray(0, 16)));
      held.push({ ac, reader });
    }
    expect(fdsOn(path)).toBe(1);
    // Another file renamed over the path while the first is still being sent: the next download has it.
    const second = randomBytes(1000);
    writeFileSync(`${path}.new`, second);
    renameSync(`${path}.new`, path);
    const again = Buffer.from(await (await fetch(`${url}/blob`)).arrayBuffer());
    expect(again.equals(second)).toBe(true);
    // One of the first downloads read to its end still gets the first file's bytes.
    const rest = [Buffer.from((await held[0].reader.read()).value!)];
    for (let r = await held[0].reader.read(); !r.done; r = await held[0].reader.read()) rest.push(Buffer.from(r.value));
    expect(Buffer.concat(rest).length).toBeGreaterThan(0);
    for (const h of held.slice(1)) h.ac.abort();
    await vi.waitFor(() => expect(fdsOn(path)).toBe(0), { timeout: 10_000, interval: 100 });
    await app.close();
  });

  it("a relay's hot content is read once and sent from memory, whole, by range and to HEAD", async () => {
    const dir = tempDir('blob-hot');
    const path = join(dir, 'blob');
    const bytes = randomBytes(3 * 1024 * 1024 + 5);
    writeFileSync(path, bytes);
    const cache = new ContentCache(16 * 1024 * 1024);
    const { Registry } = await import('prom-client');
    const app = createHttpServer({ logger: createLogger('test'), registry: new Registry() });
    let counted = 0;
    app.get('/blob', (req, reply) => sendBlob(req, reply, path, (n) => (counted += n), undefined, cache));
    const url = await app.listen({ host: '127.0.0.1', port: 0 });
    const got = await Promise.all(
      Array.from({ length: 8 }, async () => Buffer.from(await (await fetch(`${url}/blob`)).arrayBuffer())),
    );
    for (const g of got) expect(g.equals(bytes)).toBe(true);
    expect(cache.held).toBe(bytes.length); // read once for all eight
    // The relay touches a file it serves (eviction order): still the same file, not read again.
    utimesSync(path, new Date(), new Date(Date.now() + 60_000));
    expect(Buffer.from(await (await fetch(`${url}/blob`)).arrayBuffer()).equals(bytes)).toBe(true);
    expect(cache.held).toBe(bytes.length);
    const part = await fetch(`${url}/blob`, { headers: { range: 'bytes=1048570-2097160' } });
    expect(part.status).toBe(206);
    expect(Buffer.from(await part.arrayBuffer()).equals(bytes.subarray(1048570, 2097161))).toBe(true);
    const head = await fetch(`${url}/blob`, { method: 'HEAD' });
    expect(head.headers.get('content-length')).toBe(String(bytes.length));
    expect(counted).toBe(9 * bytes.length + (2097161 - 1048570));
    // A file put in its place is read afresh; the old one is not served for it.
    const other = randomBytes(1000);
    writeFileSync(`${path}.new`, other);
    renameSync(`${path}.new`, path);
    expect(Buffer.from(await (await fetch(`${url}/blob`)).arrayBuffer()).equals(other)).toBe(true);
    // Past half the budget a file is sent from the disk: open while it is sent.
    const big = randomBytes(9 * 1024 * 1024);
    writeFileSync(path, big);
    const ac = new AbortController();
    const reader = (await fetch(`${url}/blob`, { signal: ac.signal })).body!.getReader();
    await reader.read();
    expect(fdsOn(path)).toBe(1);
    ac.abort();
    await app.close();
  });

  it('the hot content cache keeps to its budget, least recently used first, and drops what is idle', async () => {
    const dir = tempDir('hot-budget');
    const file = (name: string, size: number) => {
      writeFileSync(join(dir, name), Buffer.alloc(size, name));
      return join(dir, name);
    };
    const cache = new ContentCache(1000, 200);
    const [a, b, c] = [file('a', 400), file('b', 400), file('c', 400)];
    await cache.get(a, 'v1', 400);
    await cache.get(b, 'v1', 400);
    await cache.get(a, 'v1', 400); // a used last: b goes first
    expect((await cache.get(c, 'v1', 400))!.toString()).toBe('c'.repeat(400));
    expect(cache.held).toBe(800);
    expect(cache.get(join(dir, 'big'), 'v1', 501)).toBeUndefined(); // over half the budget
    await new Promise((r) => setTimeout(r, 250));
    expect(cache.get(b, 'v1', 400)).toBeDefined(); // the idle ones make room, and are gone
    expect(cache.held).toBe(400);
    await expect(cache.get(a, 'v2', 999)).toBe(undefined);
    await expect(cache.get(a, 'v3', 300)).rejects.toThrow(/changed while it was read \(400 of 300 bytes\)/);
    expect(cache.held).toBe(400);
  });

  it("10,000 endpoints' reports and 12,000 alerts reach the master in requests it takes, the job's state last", async () => {
    // Sent as one request they were 2 MB, refused as too large, put back, and refused again forever.
    const { Registry } = await import('prom-client');
    const app = createHttpServer({ logger: createLogger('test'), registry: new Registry() });
    const got: { bytes: number; targets: number; jobs: number }[] = [];
    app.post('/api/v1/relay/reports', async (req) => {
      const body = req.body as { targets: unknown[]; jobs: unknown[] };
      got.push({ bytes: Number(req.headers['content-length']), targets: body.targets.length, jobs: body.jobs.length });
      return { ok: true };
    });
    const alerts: number[] = [];
    app.post('/api/v1/alerts', async (req, reply) => {
      const body = req.body as unknown[];
      if (body.length > MAX_ALERTS_PER_REQUEST)
        return reply.code(400).send({ error: { code: 'X', message: 'too many' } });
      alerts.push(body.length);
      return { ok: true };
    });
    const url = await app.listen({ port: 0, host: '127.0.0.1' });
    const reporter = new Reporter(new Client({ baseUrl: url, token: 't' }), createLogger('test'), 10);
    // Alerts kept through a long outage: more than one request may carry.
    for (let i = 0; i < 12_000; i++) reporter.alert({ deviceId: `relay-s-pos-${i}`, message: 'ENOSPC' });
    const tree = 'a'.repeat(64);
    for (let i = 0; i < 10_000; i++)
      reporter.target({ jobId: 'j-1', deviceId: `relay-s-pos-${i}`, state: 'installed', trees: { 'p@1.0.0': tree } });
    reporter.job({ jobId: 'j-1', state: 'complete' });
    await reporter.drain();
    await app.close();
    expect(got.reduce((n, g) => n + g.targets, 0)).toBe(10_000);
    expect(got.length).toBeGreaterThan(1);
    expect(Math.max(...got.map((g) => g.bytes))).toBeLessThan(1024 * 1024);
    expect(got.map((g) => g.jobs)).toEqual([...got.slice(1).map(() => 0), 1]);
    expect(alerts).toEqual([10_000, 2_000]);
  });
});
