// fanout.yaml: defaults, the example file, and a master that refuses a bad config with every error listed.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../src/master/config.ts';
import { parseInventory } from '../src/master/inventory.ts';
import { readInventory } from '../src/master/inventory-read.ts';
import { runFanout, tempDir } from './helpers.ts';

describe('config', () => {
  it('fills every default and reads the example file', () => {
    const d = parseConfig('{}');
    expect(d.alerts.window).toBe(24 * 3_600_000);
    expect(d.alerts.failureTypes.UNREACHABLE.threshold).toBe(3);
    expect(d.mail.retries).toBe(5);
    expect(d.redistribution).toEqual({ planOnTicketResolve: true, autoApprove: false });
    expect(Object.isFrozen(d.alerts)).toBe(true);
    const ex = parseConfig(readFileSync(join(import.meta.dirname, '..', 'docs', 'fanout.example.yaml'), 'utf8'));
    expect(ex.alerts.failureTypes.DISK_FULL.patterns).toContain('ENOSPC');
  });

  it('a failure type named in the file replaces its own rule only; the other defaults stay', () => {
    const c = parseConfig(
      'alerts: { failureTypes: { DISK_FULL: { threshold: 2 }, PRINTER_JAM: { patterns: [jam] } } }',
    );
    expect(c.alerts.failureTypes.DISK_FULL).toEqual({ threshold: 2, patterns: [] });
    expect(c.alerts.failureTypes.UNREACHABLE.patterns).toContain('ECONNREFUSED');
    expect(c.alerts.failureTypes.PRINTER_JAM.patterns).toEqual(['jam']);
    const hooks = parseConfig(
      'integrations: { webhooks: [{ url: "https://h.example/x", secret: "0123456789abcdef" }] }',
    );
    expect(hooks.integrations.webhooks[0].events).toEqual(['ticket.opened', 'ticket.resolved', 'job.complete']);
    expect(() => parseConfig('integrations: { webhooks: [{ url: "ftp://h", secret: "short" }] }')).toThrow(
      /webhook url is http[\s\S]*at least 16 characters/,
    );
  });

  it('lists every error of a bad file', () => {
    const e = (() => {
      try {
        parseConfig(
          'alerts:\n  window: forever\n  failureTypes:\n    disk_full: {threshold: 2}\n    DISK_FULL: {threshold: 0}\n  deviceOverrides:\n    relay-1: {Disk_Full: 2, UNREACHABLE: 0}\nmail:\n  retries: -1\n  smtp: {port: 99999}\nbogus: 1\n',
        );
      } catch (err) {
        return err as ConfigError;
      }
    })()!;
    expect(e).toBeInstanceOf(ConfigError);
    expect(e.errors.join('\n')).toMatch(/alerts\.window/);
    expect(e.errors.join('\n')).toMatch(/failureTypes\.disk_full: Invalid key/);
    expect(e.errors.join('\n')).toMatch(/failureTypes\.DISK_FULL\.threshold/);
    expect(e.errors.join('\n')).toMatch(/deviceOverrides\.relay-1\.Disk_Full: Invalid key/);
    expect(e.errors.join('\n')).toMatch(/deviceOverrides\.relay-1\.UNREACHABLE/);
    expect(e.errors.join('\n')).toMatch(/mail\.retries/);
    expect(e.errors.join('\n')).toMatch(/mail\.smtp\.port/);
    expect(e.errors.join('\n')).toMatch(/bogus/);
    expect(() => parseConfig('alerts: [unclosed')).toThrow(/not valid YAML/);
    // Values that would break timers or arithmetic are refused, not taken.
    expect(() => parseConfig('alerts:\n  window: 999999999d\n')).toThrow(/alerts\.window: .*at most 366d/);
    expect(() => parseConfig('mail:\n  retryBaseMs: 9e15\n')).toThrow(/mail\.retryBaseMs/);
    expect(() => parseConfig('mail:\n  giveUpAfter: 0s\n')).toThrow(/mail\.giveUpAfter/);
  });

  it('a master with a bad config stops at start and says why', async () => {
    const dir = tempDir('badcfg');
    writeFileSync(join(dir, 'bad.yaml'), 'mail:\n  retries: lots\n');
    const r = await runFanout(['master', '--data', dir, '--listen', '127.0.0.1:0', '--config', join(dir, 'bad.yaml')]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/bad\.yaml is invalid/);
    expect(r.stderr).toMatch(/mail\.retries/);
  });

  it('a data folder that cannot be made stops each part at start, naming it, instead of hanging', async () => {
    const file = join(tempDir('datafile'), 'plain');
    writeFileSync(file, 'a file\n');
    const token = ['--token', 'x'];
    const runs = [
      // /proc takes no new entries: Node's own recursive mkdir loops on it for ever.
      [['master', '--data', '/proc/fanout-none/m', '--listen', '127.0.0.1:0'], /\/proc takes no new folder/],
      [
        ['relay', '--id', 'r', ...token, '--master', 'http://127.0.0.1:9', '--data', '/proc/fanout-none/r'],
        /\/proc takes no new folder/,
      ],
      [
        [
          'agent',
          '--id',
          'a',
          ...token,
          '--relay',
          'http://127.0.0.1:9',
          '--data',
          join(file, 'd'),
          '--root',
          tempDir('root'),
        ],
        /plain is a file, not a folder/,
      ],
    ] as const;
    for (const [args, says] of runs) {
      const r = await runFanout([...args], { timeoutMs: 20_000 });
      expect(r.code, args[0]).toBe(1);
      expect(r.stderr).toMatch(says);
    }
  });

  it('reads YAML text as text: a date-like label or address stays a string, in place and on the worker', async () => {
    const yaml = (extra: string) =>
      `locations: [{code: L, name: Site, center: C}]\ncenters: [{id: C, name: C, email: [a@example.test]}]\ndevices:\n  - {id: r1, kind: relay, location: L, labels: {since: 2026-01-01, at: 2026-01-01T10:00:00Z, on: yes}}\n${extra}`;
    const small = await parseInventory(yaml(''));
    expect(small.errors).toEqual([]);
    expect(small.devices[0].labels).toEqual({ since: '2026-01-01', at: '2026-01-01T10:00:00Z', on: 'yes' });
    // Over 1 MB: parsed on a worker thread, with the same schema.
    const padding = Array.from(
      { length: 30_000 },
      (_, i) => `  - {id: e${i}, kind: endpoint, location: L, relay: r1}`,
    ).join('\n');
    const big = await readInventory(yaml(padding));
    expect(big.errors).toEqual([]);
    expect(big.devices[0].labels).toEqual({ since: '2026-01-01', at: '2026-01-01T10:00:00Z', on: 'yes' });
    expect(big.devices).toHaveLength(30_001);
  });
});
