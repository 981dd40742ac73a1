// Issue 5: `fanout lab` starts the whole network and ends the repair scenario well (what `npm start` runs).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Client } from '../src/protocol/client.ts';
import { runFanout, startFanout, tempDir } from './helpers.ts';

describe('fanout lab', () => {
  it('runs the repair scenario to a good end and stops everything', async () => {
    const data = join(tempDir('lab'), 'lab');
    const r = await runFanout(
      ['lab', '--data', data, '--port', '0', '--relays', '2', '--agents', '5', '--exit-after-scenario'],
      { timeoutMs: 110_000 },
    );
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/dashboard: https:\/\/127\.0\.0\.1:\d+\/\?token=/); // the lab runs on TLS with its own CA
    expect(r.stdout).toMatch(/mail sink: received "\[fanout\] t-/);
    expect(r.stdout).toContain('inventory: 2 relays, 5 endpoints');
    expect(r.stdout).toContain('recipients (3)'); // the first relay's share of 5
    expect(r.stdout).toContain('scenario repair: ended well');
    expect(r.stdout).toContain('stopped');
  });

  it('Ctrl-C stops every process of the lab cleanly', async () => {
    const dir = tempDir('lab-int');
    const data = join(dir, 'lab');
    const lab = await startFanout(
      ['lab', '--data', data, '--port', '0', '--relays', '1', '--agents', '1', '--scenario', 'none'],
      { logDir: dir, name: 'lab', ready: /dashboard: (https:\/\/\S+)/, timeoutMs: 60_000 },
    );
    const info = JSON.parse(readFileSync(join(data, 'lab.json'), 'utf8'));
    const urls = [info.master, ...Object.values(info.relays).map((r: any) => r.url)];
    // The lab's own CA (DATA/tls/ca.pem) is what its daemons' certificates verify against.
    const tls = { ca: readFileSync(join(data, 'tls', 'ca.pem'), 'utf8') };
    const health = (u: string) => new Client({ baseUrl: u, token: '', tls }).get('healthz');
    for (const u of urls) expect(await health(u)).toEqual({ ok: true });
    await expect(fetch(`${urls[0]}/healthz`)).rejects.toThrow(); // without the lab's CA, no connection
    expect(await lab.stop('SIGINT')).toBe(0);
    expect(readFileSync(lab.logFile, 'utf8')).toContain('stopped');
    for (const u of urls) await expect(health(u)).rejects.toThrow();
  });
});
