// The performance record (`npm run bench`): each figure with the baseline it was measured against in
// the same run, printed as a table and written to bench/results.json.
import { writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';

export interface Figure {
  /** What was measured, e.g. "alert intake 1×8". */
  name: string;
  value: number;
  unit: string;
  /** The same work done by the baseline in the same run. */
  baseline?: { name: string; value: number };
  /** ours ÷ baseline, stated so that the goal reads naturally (e.g. throughput: higher is better). */
  ratio?: number;
  goal?: string;
  met?: boolean;
  note?: string;
}

const figures: Figure[] = [];

export function record(f: Figure) {
  figures.push(f);
  const base = f.baseline ? `  vs ${f.baseline.name} ${fmt(f.baseline.value)} ${f.unit}` : '';
  const ratio = f.ratio !== undefined ? `  ratio ${f.ratio.toFixed(2)}` : '';
  const goal = f.goal ? `  goal ${f.goal}: ${f.met ? 'met' : 'NOT met'}` : '';
  console.log(`• ${f.name}: ${fmt(f.value)} ${f.unit}${base}${ratio}${goal}${f.note ? `  (${f.note})` : ''}`);
}

const fmt = (n: number) => (Math.abs(n) >= 100 ? n.toFixed(0) : Math.abs(n) >= 10 ? n.toFixed(1) : n.toFixed(2));

export function writeResults(dir: string) {
  const rows = figures.map((f) => ({
    figure: f.name,
    ours: `${fmt(f.value)} ${f.unit}`,
    baseline: f.baseline ? `${f.baseline.name} ${fmt(f.baseline.value)}` : '',
    ratio: f.ratio !== undefined ? f.ratio.toFixed(2) : '',
    goal: f.goal ? `${f.goal} ${f.met ? '✓' : '✗'}` : '',
  }));
  console.log('\nperformance record');
  console.table(rows);
  const file = join(dir, 'results.json');
  writeFileSync(
    file,
    `${JSON.stringify(
      {
        at: new Date().toISOString(),
        machine: {
          cpus: cpus().length,
          cpu: cpus()[0]?.model,
          memoryGiB: Math.round(totalmem() / 2 ** 30),
          node: process.version,
        },
        figures,
      },
      null,
      2,
    )}\n`,
  );
  console.log(`written to ${file}`);
}
