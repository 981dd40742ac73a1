// Bundles the CLI into dist/cli (one chunk per subcommand, loaded on demand), so `fanout` starts
// from a few files of compiled JavaScript instead of compiling TypeScript at every start.
import { rmSync } from 'node:fs';
import { build } from 'esbuild';

rmSync('dist/cli', { recursive: true, force: true });
await build({
  entryPoints: { fanout: 'src/cli.ts' },
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  outdir: 'dist/cli',
  chunkNames: 'chunks/[name]-[hash]',
  // Native or optional modules stay in node_modules.
  external: ['better-sqlite3', 'pg-native', '@opentelemetry/api'],
  // CommonJS dependencies inside an ES module bundle still call require().
  banner: {
    js: "import { createRequire as __fanoutRequire } from 'node:module'; const require = __fanoutRequire(import.meta.url);",
  },
  sourcemap: 'linked',
  legalComments: 'none',
  logLevel: 'warning',
});
