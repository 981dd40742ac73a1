#!/usr/bin/env node
// One executable for every part: the compiled bundle (`npm run build`, run by `npm ci` through `prepare`).
import { existsSync } from 'node:fs';

const bundle = new URL('../dist/cli/fanout.js', import.meta.url);
if (!existsSync(bundle)) {
  process.stderr.write('fanout: dist/cli is missing; run `npm run build` (npm ci does it)\n');
  process.exit(1);
}
await import(bundle.href);
