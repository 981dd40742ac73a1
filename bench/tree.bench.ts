// Attestation's cost (DESIGN §17): hashing an installed tree (hashFolder + treeHash, what an agent does
// after each install and at each re-verification) against `sha256sum` over the same files, in the
// same run. Two trees: many small files, and a few large ones.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hashFolder, treeHash } from '../src/protocol/tree.ts';
import { median } from './baselines.ts';
import { record } from './record.ts';

const RUNS = Number(process.env.BENCH_RUNS ?? 5);

function makeTree(files: number, bytes: number) {
  const dir = mkdtempSync(join(tmpdir(), 'fanout-bench-tree-'));
  for (let i = 0; i < files; i++) {
    const sub = join(dir, `d${i % 20}`);
    mkdirSync(sub, { recursive: true });
    writeFileSync(join(sub, `f${i}.bin`), randomBytes(bytes));
  }
  return dir;
}

export async function treeBench() {
  const results: Record<string, { oursMs: number; sha256sumMs: number; ratio: number }> = {};
  for (const [label, files, bytes] of [
    ['2,000 files of 4 KB', 2000, 4096],
    ['8 files of 16 MB', 8, 16 * 1024 * 1024],
  ] as const) {
    const dir = makeTree(files, bytes);
    try {
      const ours: number[] = [];
      const theirs: number[] = [];
      for (let i = 0; i < RUNS; i++) {
        // Paired: each run times both over the same warm files.
        let t = performance.now();
        treeHash(await hashFolder(dir));
        ours.push(performance.now() - t);
        t = performance.now();
        const r = spawnSync('sh', ['-c', 'find . -type f -print0 | sort -z | xargs -0 sha256sum > /dev/null'], {
          cwd: dir,
        });
        if (r.status !== 0) throw new Error(`sha256sum failed: ${r.stderr}`);
        theirs.push(performance.now() - t);
      }
      const o = median(ours);
      const s = median(theirs);
      results[label] = { oursMs: o, sha256sumMs: s, ratio: o / s };
      record({
        name: `tree hash, ${label}`,
        value: o,
        unit: 'ms',
        baseline: { name: 'sha256sum', value: s },
        ratio: o / s,
        note: `median of ${RUNS}`,
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  return results;
}

if (import.meta.url === `file://${process.argv[1]}`) await treeBench();
