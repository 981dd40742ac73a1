// Inventory import at fleet size (issue 14): 20,000 devices through the CLI, tokens to a 0600 file,
// the master answering its health checks throughout, and a re-import that keeps every token.
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client } from '../src/protocol/client.ts';
import { inventoryYaml, type Proc, runFanout, startFanout, tempDir } from './helpers.ts';

const RELAYS = 20;
const PER_RELAY = 999;
const dir = tempDir('inventory-scale');
let master: Proc;
let env: Record<string, string>;

beforeAll(async () => {
  master = await startFanout(['master', '--data', join(dir, 'master'), '--listen', '127.0.0.1:0'], {
    logDir: join(dir, 'logs'),
    name: 'master',
    env: { FANOUT_LOG_LEVEL: 'warn' },
  });
  env = { FANOUT_MASTER: master.url, FANOUT_TOKEN: readFileSync(join(dir, 'master', 'admin.token'), 'utf8').trim() };
  const relays = Array.from({ length: RELAYS }, (_, i) => `relay-${i}`);
  writeFileSync(join(dir, 'fleet.yaml'), inventoryYaml(relays, PER_RELAY));
}, 60_000);
afterAll(() => master?.stop());

describe('inventory import of 20,000 devices', () => {
  it('writes one token per new device to a 0600 file while the master keeps answering', async () => {
    let probing = true;
    const answers: number[] = [];
    const probe = (async () => {
      while (probing) {
        answers.push((await fetch(`${master.url}/healthz`)).status);
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    const tokens = join(dir, 'tokens.txt');
    const r = await runFanout(['inventory', 'import', join(dir, 'fleet.yaml'), '--tokens', tokens, '--json'], { env });
    probing = false;
    await probe;
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({ devices: RELAYS * (PER_RELAY + 1), newTokens: RELAYS * (PER_RELAY + 1) });
    expect(answers.length).toBeGreaterThan(1);
    expect(answers.every((s) => s === 200)).toBe(true);

    expect(statSync(tokens).mode & 0o777).toBe(0o600);
    const lines = readFileSync(tokens, 'utf8').trim().split('\n');
    expect(lines).toHaveLength(RELAYS * (PER_RELAY + 1));
    const relayToken = lines.find((l) => l.startsWith('relay-7 '))!.split(' ')[1];
    // The token in the file is the relay's: the master enrolls it with its 999 endpoints.
    const enroll = await new Client({ baseUrl: master.url, token: relayToken }).get('api/v1/relay/enroll');
    expect(enroll.relayId).toBe('relay-7');
    expect(enroll.devices).toHaveLength(PER_RELAY);

    // A second import of the same file issues nothing new, and the relay's token still works. Its
    // tokens file already exists, world-readable: it is made 0600 before anything is written.
    writeFileSync(join(dir, 't2.txt'), 'old\n', { mode: 0o644 });
    const again = await runFanout(['inventory', 'import', join(dir, 'fleet.yaml'), '--tokens', join(dir, 't2.txt')], {
      env,
    });
    expect(again.stdout).toContain(`${RELAYS * (PER_RELAY + 1)} device(s)`);
    expect(again.stdout).toContain('0 new token(s) written');
    expect(readFileSync(join(dir, 't2.txt'), 'utf8')).toBe('');
    expect(statSync(join(dir, 't2.txt')).mode & 0o777).toBe(0o600);
    expect((await new Client({ baseUrl: master.url, token: relayToken }).get('api/v1/relay/enroll')).relayId).toBe(
      'relay-7',
    );
  }, 120_000);

  it('names what is wrong in a large file that is not YAML, and keeps what was imported', async () => {
    const broken = join(dir, 'broken.yaml');
    writeFileSync(broken, `${readFileSync(join(dir, 'fleet.yaml'), 'utf8')}\n  - {id: x, kind: [unclosed\n`);
    const r = await runFanout(['inventory', 'import', broken], { env });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/not valid YAML or JSON/);
    const inv = await new Client({ baseUrl: master.url, token: env.FANOUT_TOKEN }).get('api/v1/inventory');
    expect(inv.devices).toHaveLength(RELAYS * (PER_RELAY + 1));
  }, 60_000);

  it('a fleet search reads every device without holding the master: health checks answered meanwhile', async () => {
    const admin = new Client({ baseUrl: master.url, token: env.FANOUT_TOKEN });
    let searching = true;
    let answered = 0;
    // Nothing matches: each of the view's reads goes through all 20,000 devices.
    const search = admin
      .get<{ total: number; devices: unknown[] }>('api/v1/fleet?search=nowhere-at-all&limit=50')
      .finally(() => (searching = false));
    const started = Date.now();
    while (searching) {
      expect((await fetch(`${master.url}/healthz`)).status).toBe(200);
      if (searching) answered++;
    }
    const found = await search;
    console.log(
      `a fleet search over 20,000 devices: ${Date.now() - started} ms, ${answered} health checks answered meanwhile`,
    );
    expect(found).toMatchObject({ total: 0, devices: [] });
    // Before, the search held the event loop from start to end: one answer at most, sent before it.
    expect(answered).toBeGreaterThan(5);
  }, 60_000);
});
