// Pure pieces, tested with real inputs: alert lines, locations, classification, faults, plans.
import { describe, expect, it } from 'vitest';
import { Turns } from '../src/agent/turns.ts';
import { Classifier } from '../src/alerts/classify.ts';
import { GroupCommit } from '../src/alerts/group-commit.ts';
import { Locations } from '../src/alerts/location.ts';
import { parseAlertmanager, parseTextLine } from '../src/alerts/parse.ts';
import { parseSize, table } from '../src/cli/common.ts';
import { Faults } from '../src/common/faults.ts';
import { splitHostPort } from '../src/common/net.ts';
import { jsonSafe, quotedLines, terminalSafe } from '../src/common/terminal.ts';
import { describeDiff, diffTrees, treeHash } from '../src/protocol/tree.ts';
import { nextOpening, parseCron, windowOpen } from '../src/protocol/windows.ts';
import { collectGarbageSooner, HEAP_GROWING_PERCENT } from '../src/relay/heap.ts';
import type { JobLogRecord } from '../src/relay/joblog.ts';
import { buildPlan, commandFromPlan } from '../src/relay/plan.ts';
import { replay } from '../src/relay/state.ts';
import type { ChangeEvent } from '../src/web/api.ts';
import { changeQueue, mergeChanges } from '../src/web/change-queue.ts';

describe('alert text lines', () => {
  it('reads the documented form, quoted values and an unquoted msg at the end', () => {
    const a = parseTextLine(
      '2026-11-24T19:00:00Z relay-dal DISK_FULL job=j-42 location="Store 42 Dallas TX" msg="ENOSPC writing depot"',
      'x',
    );
    expect(a).toMatchObject({
      at: '2026-11-24T19:00:00.000Z',
      deviceId: 'relay-dal',
      failureType: 'DISK_FULL',
      jobId: 'j-42',
      location: 'Store 42 Dallas TX',
      message: 'ENOSPC writing depot',
    });
    const b = parseTextLine('2026-11-24T19:00:00Z pos-1 - msg=connect ECONNREFUSED 10.0.0.1:443', 'x');
    expect(b.failureType).toBeUndefined();
    expect(b.message).toBe('connect ECONNREFUSED 10.0.0.1:443');
    expect(parseTextLine('2026-11-24T19:00:00Z pos-1 - msg="a \\"quoted\\" word"', 'x').message).toBe(
      'a "quoted" word',
    );
  });
  it('says what is wrong with a line that does not parse', () => {
    expect(parseTextLine('yesterday pos-1 DISK_FULL', 'x').parseError).toMatch(/"yesterday" is not a timestamp/);
    expect(parseTextLine('2026-11-24T19:00:00Z pos-1 disk-full', 'x').parseError).toMatch(/not a failure type/);
    expect(parseTextLine('2026-11-24T19:00:00Z pos-1 - job="unterminated', 'x').parseError).toMatch(
      /unterminated quote/,
    );
    expect(parseTextLine('just words', 'x').parseError).toMatch(/expected/);
  });
  it('gives a retried line the same id, and a different line another', () => {
    const l = '2026-11-24T19:00:00Z pos-1 - msg=x';
    expect(parseTextLine(l, 'a').alertId).toBe(parseTextLine(l, 'a').alertId);
    expect(parseTextLine(l + 'y', 'a').alertId).not.toBe(parseTextLine(l, 'a').alertId);
  });
  it('keeps Alertmanager resolved notices apart from firing alerts', () => {
    const [firing, resolved] = parseAlertmanager({
      alerts: [
        {
          status: 'firing',
          labels: { alertname: 'DISK_FULL', device: 'relay-dal', location: 'DAL-0042' },
          startsAt: '2026-11-24T19:00:00Z',
          fingerprint: 'f1',
        },
        {
          status: 'resolved',
          labels: { alertname: 'DISK_FULL', device: 'relay-dal' },
          startsAt: '2026-11-24T19:00:00Z',
          fingerprint: 'f1',
        },
      ],
    });
    expect(firing).toMatchObject({ deviceId: 'relay-dal', failureType: 'DISK_FULL', location: 'DAL-0042' });
    expect(resolved.notice).toMatch(/resolved notice/);
    expect(parseAlertmanager({ nope: 1 })[0].parseError).toMatch(/no "alerts" array/);
  });
});

describe('classification and locations', () => {
  const c = new Classifier({
    DISK_FULL: { patterns: ['no space left', 'ENOSPC'] },
    UNREACHABLE: { patterns: ['timed out'] },
  });
  it('uses the declared type, else the first matching pattern, else UNKNOWN', () => {
    expect(c.classify('CERT', 'ENOSPC').failureType).toBe('CERT');
    expect(c.classify(undefined, 'write failed: No space left on device').failureType).toBe('DISK_FULL');
    expect(c.classify(undefined, 'something odd').failureType).toBe('UNKNOWN');
  });
  const locs = new Locations([
    { code: 'DAL-0042', name: 'Store 0042, Dallas, TX', center: 'mc-south' },
    { code: 'DEN-0043', name: 'Store 0043, Denver, CO', center: 'mc-north' },
  ]);
  it('matches code, name and misspelled names; the inventory wins otherwise', () => {
    expect(locs.normalize('DAL-0042', 'DAL-0042').matched).toBe('exact code');
    expect(locs.normalize('store 0042 dallas tx', 'DAL-0042').matched).toBe('exact name');
    expect(locs.normalize('Store 42 Dalas TX', 'DAL-0042')).toMatchObject({
      location: 'DAL-0042',
      matched: 'fuzzy name',
      replaced: false,
    });
    expect(locs.normalize('Store 0043, Denver, CO', 'DAL-0042')).toMatchObject({
      location: 'DAL-0042',
      replaced: true,
      detail: `"Store 0043, Denver, CO" does not match the device's location (it looks like DEN-0043); the inventory's DAL-0042 replaces it`,
    });
    expect(locs.normalize(undefined, 'DAL-0042').matched).toBe('not given');
  });
  it('finds the location a text looks like among a thousand sites', () => {
    const towns = ['Dallas, TX', 'Denver, CO', 'Austin, TX', 'Boise, ID'];
    const many = new Locations(
      Array.from({ length: 1000 }, (_, i) => ({
        code: `LOC-${i}`,
        name: `Store ${String(i).padStart(4, '0')}, ${towns[i % 4]}`,
        center: 'mc-south',
      })),
    );
    expect(many.normalize('Stor 0737 Denvr CO', 'LOC-12').detail).toBe(
      `"Stor 0737 Denvr CO" does not match the device's location (it looks like LOC-737); the inventory's LOC-12 replaces it`,
    );
    expect(many.normalize('Store 737 Denver', 'LOC-737')).toMatchObject({ matched: 'fuzzy name', replaced: false });
    expect(many.normalize('loc-5', 'LOC-737').detail).toMatch(/\(it looks like LOC-5\)/);
    // Long texts (up to the 4,000 characters a field keeps) are matched by their words too.
    const padded = `Store 0737 Denver CO${' filler'.repeat(560)}`;
    expect(many.normalize(padded, 'LOC-737')).toMatchObject({ matched: 'fuzzy name', replaced: false });
    expect(many.normalize('x'.repeat(4000), 'LOC-737')).toMatchObject({ matched: 'none', replaced: true });
  });
});

describe('faults', () => {
  it('are ignored without --allow-faults', () => {
    expect(new Faults(false, 'relay.depot.write=ENOSPC').list()).toEqual({});
  });
  it('fire as errno errors, and fail:N fires N times', () => {
    const f = new Faults(true, 'relay.depot.write=ENOSPC,smtp.send=fail:2');
    expect(() => f.throwIf('relay.depot.write')).toThrow(/ENOSPC/);
    expect(f.take('smtp.send')).toBe('fail:2');
    expect(f.take('smtp.send')).toBe('fail:1');
    expect(f.take('smtp.send')).toBeUndefined();
    expect(() => new Faults(true, 'nonsense')).toThrow(/point=value/);
    const g = new Faults(true, 'relay.upstream.fetch=ECONNRESET:2');
    expect(() => g.throwIf('relay.upstream.fetch')).toThrow(expect.objectContaining({ code: 'ECONNRESET' }));
    expect(() => g.throwIf('relay.upstream.fetch')).toThrow(/ECONNRESET/);
    expect(() => g.throwIf('relay.upstream.fetch')).not.toThrow();
  });
});

describe('plans from a job log', () => {
  const pkg = { name: 'p', version: '1', digest: `sha256:${'a'.repeat(64)}`, size: 100, signature: 's' };
  const command = {
    commandId: 'c-1',
    seq: 3,
    jobId: 'j-1',
    relayId: 'r',
    kind: 'distribute' as const,
    packages: [pkg],
    distributionList: ['e1', 'e2', 'e3'],
    params: { deadline: '2020-01-01T00:00:00Z' },
    issuedAt: '2026-01-01T00:00:00Z',
    issuedBy: 'admin',
  };
  const at = '2026-01-01T00:00:01Z';
  const log: JobLogRecord[] = [
    { type: 'command', at, command },
    { type: 'fetch', at, event: 'verified', digest: pkg.digest, bytes: 100 },
    { type: 'target', at, deviceId: 'e1', state: 'installed', attempt: 1, commandId: 'c-1' },
    {
      type: 'target',
      at,
      deviceId: 'e2',
      state: 'failed',
      attempt: 3,
      commandId: 'c-1',
      failureType: 'INSTALL_FAILED',
    },
    { type: 'failed', at, commandId: 'c-1', failureType: 'DISK_FULL', message: 'ENOSPC' },
  ];
  it('lists exactly the targets not installed, with what changed against the original', () => {
    const st = replay('j-1', log)!;
    expect(st.phase).toBe('failed');
    const r = buildPlan(st, 'r', () => true);
    if (!r.ok) throw new Error(r.reason);
    expect(r.plan.distributionList).toEqual(['e2', 'e3']);
    expect(r.plan.original.installed).toEqual(['e1']);
    expect(r.plan.bytesToSend).toBe(200);
    // e2 had verified the content (it went on to install) before its script failed: nothing to send it.
    const held = replay('j-1', [
      ...log.slice(0, 3),
      { type: 'target', at, deviceId: 'e2', state: 'installing', attempt: 3, commandId: 'c-1' },
      ...log.slice(3),
    ])!;
    const r2 = buildPlan(held, 'r', () => true);
    if (!r2.ok) throw new Error(r2.reason);
    expect(r2.plan).toMatchObject({ distributionList: ['e2', 'e3'], bytesToSend: 100, targetsHoldingContent: 1 });
    // Not from the depot either: the relay fetches it first.
    const r3 = buildPlan(held, 'r', () => false);
    expect(r3.ok && r3.plan.bytesToSend).toBe(200);
    const cmd = commandFromPlan(st, r.plan, 'ops');
    expect(cmd).toMatchObject({
      kind: 'redistribute',
      repeats: 'c-1',
      distributionList: ['e2', 'e3'],
      issuedBy: 'ops',
      seq: 3,
    });
    expect(cmd.params).toEqual(command.params); // the original's, unchanged: agents check them against the signature
  });
  it('refuses a running or complete job with the reason', () => {
    expect(buildPlan(replay('j-1', log.slice(0, 3))!, 'r', () => true)).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/still/),
    });
  });
});

describe('group commit', () => {
  it('puts requests that wait together into one commit, answering each with its own results', async () => {
    const commits: number[][] = [];
    const g = new GroupCommit<number, number>(async (items) => {
      commits.push(items);
      await new Promise((r) => setTimeout(r, 20));
      return items.map((x) => x * 10);
    });
    // Submitted in one turn of the event loop: one commit, each answered with its own results.
    const answers = await Promise.all([g.submit([1]), g.submit([2, 3]), g.submit([4])]);
    expect(answers).toEqual([[10], [20, 30], [40]]);
    expect(commits).toEqual([[1, 2, 3, 4]]);
    // Submitted while that commits: they wait together for the next one.
    const first = g.submit([5]);
    await new Promise((r) => setTimeout(r, 5));
    const later = await Promise.all([g.submit([6]), g.submit([7])]);
    await first;
    expect(later).toEqual([[60], [70]]);
    expect(commits).toEqual([[1, 2, 3, 4], [5], [6, 7]]);
  });
  it('waits a moment for a source that keeps coming back, never for a lone one or a newcomer', async () => {
    const commits: string[][] = [];
    const g = new GroupCommit<string, string>(async (items) => {
      commits.push(items);
      return items;
    });
    const [a, b] = [{}, {}];
    const turn = () => new Promise((r) => setImmediate(r));
    await Promise.all([g.submit(['a0'], a), g.submit(['b0'], b)]);
    // Each has come once (a relay's alert now and then): a is not held up for b.
    const a1 = g.submit(['a1'], a);
    await turn();
    await turn();
    await Promise.all([a1, g.submit(['b1'], b)]);
    // Both keep coming back: a comes back first, b a few turns of the event loop later (its answer
    // took that long to reach it), and they share one commit. Before, a's went alone and b's after it.
    const a2 = g.submit(['a2'], a);
    await turn();
    await turn();
    await Promise.all([a2, g.submit(['b2'], b)]);
    expect(commits).toEqual([['a0', 'b0'], ['a1'], ['b1'], ['a2', 'b2']]);
    // b has been quiet for 150 ms: a is not held up for it, and b's next goes on its own.
    await new Promise((r) => setTimeout(r, 150));
    const a3 = g.submit(['a3'], a);
    await turn();
    await turn();
    await Promise.all([a3, g.submit(['b3'], b)]);
    expect(commits.slice(4)).toEqual([['a3'], ['b3']]);
  });
  it('a failing request does not fail the requests grouped with it', async () => {
    const g = new GroupCommit<number, number>(async (items) => {
      await new Promise((r) => setTimeout(r, 5));
      if (items.includes(13)) throw new Error('bad item 13');
      return items;
    });
    const first = g.submit([1]);
    const results = await Promise.allSettled([g.submit([2]), g.submit([13]), g.submit([3])]);
    await first;
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((results[1] as PromiseRejectedResult).reason.message).toBe('bad item 13');
  });
});

describe('sizes and trees', () => {
  it('reads a size flag in bytes, SI and binary units, and names a bad one', () => {
    expect(parseSize('500MB', '--depot-max-bytes')).toBe(500_000_000);
    expect(parseSize('1GiB', '--depot-max-bytes')).toBe(1024 ** 3);
    expect(parseSize('4096', '--depot-max-bytes')).toBe(4096);
    expect(() => parseSize('lots', '--depot-max-bytes')).toThrow(/--depot-max-bytes must be a size like 500MB/);
    expect(() => parseSize('0', '--depot-max-bytes')).toThrow(/must be a size/);
  });

  it('hashes a tree by its sorted entries and names what changed, went missing or appeared', () => {
    const a = { path: 'a.txt', mode: 0o644, sha256: '1'.repeat(64) };
    const b = { path: 'bin/b', mode: 0o755, sha256: '2'.repeat(64) };
    expect(treeHash([a, b])).toBe(treeHash([b, a]));
    expect(treeHash([a, b])).not.toBe(treeHash([a, { ...b, mode: 0o644 }]));
    const d = diffTrees(
      [a, b],
      [
        { ...a, sha256: '3'.repeat(64) },
        { path: 'x', mode: 0o644, sha256: '4'.repeat(64) },
      ],
    );
    expect(d).toEqual({ changed: ['a.txt'], missing: ['bin/b'], extra: ['x'] });
    expect(describeDiff(d)).toBe('changed a.txt; missing bin/b; extra x');
  });
});

describe('maintenance windows', () => {
  const at = (iso: string) => Date.parse(iso);
  it('opens by cron in its time zone for its duration, and says when it opens next', () => {
    const nightly = [{ cron: '0 2 * * *', durationMs: 2 * 3_600_000, tz: 'America/Chicago' }];
    // 02:00–04:00 in Chicago is 08:00–10:00 UTC in November (CST).
    expect(windowOpen(nightly, at('2026-11-26T08:30:00Z'))).toBe(true);
    expect(windowOpen(nightly, at('2026-11-26T10:00:00Z'))).toBe(false);
    expect(windowOpen(nightly, at('2026-11-26T07:59:00Z'))).toBe(false);
    expect(new Date(nextOpening(nightly, at('2026-11-26T10:00:00Z'))!).toISOString()).toBe('2026-11-27T08:00:00.000Z');
    const weekdays = [{ cron: '*/30 9-17 * * 1-5', durationMs: 10 * 60_000 }];
    expect(windowOpen(weekdays, at('2026-11-27T09:35:00Z'))).toBe(true); // a Friday
    expect(windowOpen(weekdays, at('2026-11-28T09:35:00Z'))).toBe(false); // a Saturday
    expect(() => parseCron('0 25 * * *')).toThrow(/out of range 0-23/);
    expect(() => parseCron('0 2 * *')).toThrow(/needs 5 fields/);
  });
});

describe("an endpoint's turns", () => {
  it('one at a time in order; while one waits for its window only urgent work goes, and it goes on before the rest', async () => {
    const turns = new Turns();
    const log: string[] = [];
    let open!: () => void;
    const window = new Promise<void>((r) => (open = r));
    const work = (name: string, urgent: boolean, body: () => Promise<void> = async () => {}) =>
      turns
        .take(urgent)
        .then(async () => {
          log.push(`${name} starts`);
          await body();
          log.push(`${name} ends`);
        })
        .finally(() => turns.release());
    const waiting = work('windowed', false, () =>
      turns.lend(async () => {
        log.push('windowed waits');
        await window;
      }),
    );
    const normal = work('normal', false);
    const urgent = work('urgent', true, () => new Promise((r) => setTimeout(r, 20)));
    const verify = work('verify', true);
    await urgent;
    await verify;
    expect(log).toEqual([
      'windowed starts',
      'windowed waits',
      'urgent starts',
      'urgent ends',
      'verify starts',
      'verify ends',
    ]);
    open();
    await Promise.all([waiting, normal]);
    expect(log.slice(6)).toEqual(['windowed ends', 'normal starts', 'normal ends']);
  });

  it('urgent work that lends in turn (its own download) keeps the turn lent until the first lender is back', async () => {
    const turns = new Turns();
    const log: string[] = [];
    const gate = () => {
      let open!: () => void;
      return { wait: new Promise<void>((r) => (open = r)), open: () => open() };
    };
    const [slow, quick] = [gate(), gate()];
    const work = (name: string, urgent: boolean, fetch?: Promise<void>) =>
      turns
        .take(urgent)
        .then(async () => {
          log.push(`${name} starts`);
          if (fetch) await turns.lend(() => fetch);
          log.push(`${name} installs`);
        })
        .finally(() => turns.release());
    const big = work('big', false, slow.wait);
    const urgent = work('urgent', true, quick.wait);
    const normal = work('normal', false);
    await new Promise((r) => setImmediate(r));
    quick.open();
    await urgent;
    // The urgent download is back, the big one is not: the normal job still waits behind it.
    await new Promise((r) => setTimeout(r, 10));
    expect(log).toEqual(['big starts', 'urgent starts', 'urgent installs']);
    slow.open();
    await Promise.all([big, normal]);
    expect(log.slice(3)).toEqual(['big installs', 'normal starts', 'normal installs']);
  });
});

describe("the relay's garbage collection", () => {
  it('collects once the heap grew by a tenth, unless the operator set it', () => {
    expect(collectGarbageSooner(['--heap-growing-percent=50'])).toBe(false);
    expect(collectGarbageSooner(['--max-old-space-size=512', '--heap_growing_percent=30'])).toBe(false);
    expect(collectGarbageSooner(['--max-old-space-size=512'])).toBe(true);
    expect(HEAP_GROWING_PERCENT).toBe(10);
  });
});

describe('listen addresses', () => {
  it('reads HOST:PORT, [IPv6]:PORT, :PORT and PORT, and names what is not one', () => {
    expect(splitHostPort('0.0.0.0:8470')).toEqual(['0.0.0.0', 8470]);
    expect(splitHostPort('[::1]:8470')).toEqual(['::1', 8470]);
    expect(splitHostPort(':0')).toEqual(['127.0.0.1', 0]);
    expect(splitHostPort('8471')).toEqual(['127.0.0.1', 8471]);
    for (const bad of ['nonsense', '127.0.0.1:99999', 'host:', ':8x', '127.0.0.1:-1', '1e3'])
      expect(() => splitHostPort(bad), bad).toThrow(`--listen "${bad}" is not HOST:PORT, :PORT or PORT`);
  });
});

describe("the dashboard's change events", () => {
  it('fetches one at a time, and merges those that arrive meanwhile into the next', async () => {
    const fetched: ChangeEvent[] = [];
    let finish: () => void = () => undefined;
    const push = changeQueue(
      (e) =>
        new Promise<void>((resolve) => {
          fetched.push(e);
          finish = resolve;
        }),
    );
    push({ all: false, lists: ['alerts'] });
    // An alert storm while the first is fetched: ten events, one fetch after it.
    for (let i = 0; i < 10; i++) push({ all: false, lists: ['alerts', 'tickets'], jobs: [`j-${i % 3}`] });
    expect(fetched).toHaveLength(1);
    finish();
    await new Promise((r) => setTimeout(r, 0));
    expect(fetched).toEqual([
      { all: false, lists: ['alerts'] },
      { all: false, lists: ['alerts', 'tickets'], jobs: ['j-0', 'j-1', 'j-2'] },
    ]);
    finish();
    await new Promise((r) => setTimeout(r, 0));
    push({ all: false, lists: ['plans'] });
    expect(fetched).toHaveLength(3); // idle again: the next one goes at once
    expect(mergeChanges({ all: false, lists: ['plans'] }, { all: true })).toEqual({ all: true });
  });
});

describe("what the CLI prints of the network's text", () => {
  const esc = '\u001b[2J\u009b1m\r\u202e';
  it('shows controls a terminal obeys as escapes, keeping lines and tabs of our own', () => {
    expect(terminalSafe(`a${esc}b\n\tc`)).toBe('a\\u001b[2J\\u009b1m\\u000d\\u202eb\n\tc');
  });
  it("keeps a table's rows and columns its own: a value's line breaks and tabs are escaped", () => {
    const out = table([{ id: 'x\ny  FAKE  row', state: 'ok\tz' }], ['id', 'state']);
    expect(out.split('\n')).toEqual([`${'ID'.padEnd(19)}  STATE`, 'x\\u000ay  FAKE  row  ok\\u0009z']);
  });
  it("marks a message's later lines, so that none can pass for a line of ours", () => {
    const forged = 'disk full\n   9. ticket  t-forged\u2028https://evil.example/';
    expect(quotedLines(forged, '  | ').split('\n')).toEqual([
      'disk full',
      '  |    9. ticket  t-forged\\u2028https://evil.example/',
    ]);
  });
  it('writes JSON a reader parses to the same strings, with nothing a terminal obeys', () => {
    const data = { message: `m${esc}`, n: 1 };
    const json = jsonSafe(JSON.stringify(data));
    expect(json).not.toMatch(/[\u0080-\u009f\u202e]/);
    expect(JSON.parse(json)).toEqual(data);
  });
});
