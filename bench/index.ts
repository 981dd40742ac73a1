// `npm run bench`: every benchmark, each figure printed with its ratio to a baseline of the same run.
import { startupBench } from './startup.bench.ts';
import { swarmBench } from './swarm.bench.ts';
import { treeBench } from './tree.bench.ts';

await startupBench();
await treeBench();
await swarmBench();
await import('./alerts.bench.ts');
