#!/usr/bin/env node
// One executable for every part; TypeScript is loaded through tsx so no build step is needed.
import { register } from 'tsx/esm/api';
register();
await import('../src/cli.ts');
