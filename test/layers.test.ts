// The code's shape: imports only run downhill, and modules stay small (or say why they are not).
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = resolve(import.meta.dirname, '..', 'src');
/** protocol, store → common → relay, agent, alerts → master → redistribute → lab → cli. */
const RANK: Record<string, number> = {
  protocol: 0,
  store: 0,
  common: 1,
  relay: 2,
  agent: 2,
  alerts: 2,
  master: 3,
  redistribute: 4,
  lab: 5,
  cli: 6,
};

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? files(p) : /\.tsx?$/.test(f) ? [p] : [];
  });
}

const folderOf = (file: string) => {
  const rel = relative(SRC, file).split('/');
  return rel.length === 1 ? rel[0].replace(/\.tsx?$/, '') : rel[0];
};

/** Every import of ours that climbs, or crosses between parts of the same level. */
function uphill(sources: { file: string; text: string }[]) {
  const bad: string[] = [];
  for (const { file, text } of sources) {
    const from = folderOf(file);
    if (from === 'web') continue; // the dashboard is its own bundle; checked below
    for (const m of text.matchAll(/(?:import|export)[^'"]*?from\s+'(\.[^']+)'|import\('(\.[^']+)'\)/g)) {
      const to = folderOf(resolve(dirname(file), m[1] ?? m[2]));
      if (to === from) continue;
      if (!(to in RANK) || !(from in RANK) || RANK[to] >= RANK[from]) bad.push(`${relative(SRC, file)} → ${to}`);
    }
  }
  return bad;
}

describe('code shape', () => {
  const sources = files(SRC).map((file) => ({ file, text: readFileSync(file, 'utf8') }));

  it('imports only downhill: protocol, store → common → relay, agent, alerts → master → redistribute → lab → cli', () => {
    expect(uphill(sources)).toEqual([]);
  });

  it('the check itself catches a climbing import', () => {
    const fake = { file: join(SRC, 'alerts', 'x.ts'), text: "import { Plans } from '../master/plans.ts';" };
    expect(uphill([fake])).toEqual(['alerts/x.ts → master']);
    const sideways = { file: join(SRC, 'agent', 'x.ts'), text: "import { Depot } from '../relay/depot.ts';" };
    expect(uphill([sideways])).toEqual(['agent/x.ts → relay']);
  });

  it('the dashboard imports nothing from the daemons', () => {
    const web = sources.filter((s) => folderOf(s.file) === 'web');
    // Any relative import that resolves outside src/web is a leak (views may use ../api.ts).
    const leaks = web.flatMap((s) =>
      [...s.text.matchAll(/from\s+'(\.{1,2}\/[^']+)'/g)]
        .filter((m) => !resolve(dirname(s.file), m[1]).startsWith(join(SRC, 'web') + sep))
        .map((m) => `${relative(SRC, s.file)} → ${m[1]}`),
    );
    expect(web.length).toBeGreaterThan(5);
    expect(leaks).toEqual([]);
  });

  it("starts every command without a daemon's code: those parts load when their command runs", () => {
    // What `fanout --help` (and every command's start, an agent's included) reads before any action:
    // value imports from src/cli.ts on, not `import type` and not `await import(…)`.
    const text = new Map(sources.map((s) => [s.file, s.text]));
    const eager = new Set<string>();
    const visit = (file: string) => {
      if (eager.has(file)) return;
      eager.add(file);
      for (const m of (text.get(file) ?? '').matchAll(/^import (?!type )[^;]*?from '(\.[^']+)';/gms))
        visit(resolve(dirname(file), m[1]));
    };
    visit(join(SRC, 'cli.ts'));
    const daemons = ['relay', 'master', 'agent', 'lab', 'redistribute', 'alerts', 'store'];
    const loaded = [...eager].filter((f) => daemons.includes(folderOf(f))).map((f) => relative(SRC, f));
    expect(eager.size).toBeGreaterThan(10);
    expect(loaded).toEqual([]);
  });

  it('no module is over 200 lines without a reason in its header', () => {
    const long = sources
      .filter(
        (s) =>
          s.text.split('\n').length > 200 && !/^\/\/ .*\n(\/\/.*\n)*\/\/ Long because /m.test(s.text.slice(0, 1500)),
      )
      .map((s) => `${relative(SRC, s.file)} (${s.text.split('\n').length} lines)`);
    expect(long).toEqual([]);
  });
});
