// `npm run bench`: the project's performance record. Every figure is measured beside its baseline in
// the same run (Alertmanager, nginx, curl, sha256sum, node, linear growth), printed as a table and
// written to bench/results.json. Sizes: BENCH_SECONDS, BENCH_AGENTS, BENCH_PACKAGE_MB, SWARM_COUNT.
import { alertsBench } from './alerts.bench.ts';
import { distributionBench } from './distribution.bench.ts';
import { enrollBench } from './enroll.bench.ts';
import { inventoryBench } from './inventory.bench.ts';
import { writeResults } from './record.ts';
import { redistributionBench } from './redistribution.bench.ts';
import { startupBench } from './startup.bench.ts';
import { swarmBench } from './swarm.bench.ts';
import { treeBench } from './tree.bench.ts';

const only = process.argv.slice(2);
const benches = {
  startup: startupBench,
  tree: treeBench,
  alerts: alertsBench,
  inventory: inventoryBench,
  enroll: enrollBench,
  distribution: distributionBench,
  redistribution: redistributionBench,
  swarm: swarmBench,
};
for (const [name, run] of Object.entries(benches)) {
  if (only.length && !only.includes(name)) continue;
  console.log(`\n## ${name}`);
  await run();
}
writeResults(import.meta.dirname);
