// Issue 5: `fanout lab` starts the whole network and ends the repair scenario well (what `npm start` runs).
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runFanout, tempDir } from './helpers.ts';

describe('fanout lab', () => {
  it('runs the repair scenario to a good end and stops everything', async () => {
    const data = join(tempDir('lab'), 'lab');
    const r = await runFanout(['lab', '--data', data, '--port', '0', '--relays', '2', '--agents', '2', '--exit-after-scenario'], { timeoutMs: 110_000 });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/dashboard: http:\/\/127\.0\.0\.1:\d+\/\?token=/);
    expect(r.stdout).toMatch(/mail sink: received "\[fanout\] t-/);
    expect(r.stdout).toContain('recipients (2)');
    expect(r.stdout).toContain('scenario repair: ended well');
    expect(r.stdout).toContain('stopped');
  });
});
