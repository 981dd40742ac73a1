// `fanout swarm`: simulated endpoints for capacity tests (DESIGN §16).
import type { Command } from 'commander';
import { action, CliError, print, withClientTls } from './common.ts';

export function swarmCommand(program: Command) {
  withClientTls(
    program
      .command('swarm')
      .description('N simulated endpoints in one process on a relay, speaking the real agent protocol (capacity tests)')
      .requiredOption('--relay <url>', 'the relay the endpoints use')
      .requiredOption(
        '--tokens <file>',
        'their device tokens: the JSON of `inventory import --json`, or lines "ID TOKEN"',
      )
      .option('--count <n>', 'how many endpoints (default: every one in the file)')
      .option(
        '--exit-after-idle <seconds>',
        'stop once every endpoint has been idle this long after some work (0: until Ctrl-C)',
        '0',
      )
      .option('--json', 'print machine-readable JSON'),
  )
    .addHelpText(
      'after',
      `
Each endpoint long-polls, checks the master's signature and its place on the signed list, downloads the
content, checks its digest and signature, and reports each step; nothing is kept on disk. Printed:
endpoints, installed, failed, and p50/p99 of the time from a command's issue to an endpoint holding it.

  fanout inventory import fleet.yaml --json > tokens.json
  fanout swarm --relay https://relay-dal:8471 --tokens tokens.json --count 10000 --exit-after-idle 30 --json`,
    )
    .action(
      action(
        async (o: {
          relay: string;
          tokens: string;
          count?: string;
          exitAfterIdle: string;
          json?: boolean;
          ca?: string;
        }) => {
          const { readTokens, runSwarm } = await import('../lab/swarm.ts');
          const { clientTls } = await import('../common/tls.ts');
          const all = readTokens(o.tokens);
          const n = o.count ? Number(o.count) : all.length;
          if (!(n > 0) || n > all.length)
            throw new CliError(`--count must be 1 to ${all.length} (the endpoints in ${o.tokens})`);
          const stop = new AbortController();
          process.once('SIGINT', () => stop.abort());
          process.once('SIGTERM', () => stop.abort());
          let last = '';
          const r = await runSwarm({
            relay: o.relay,
            endpoints: all.slice(0, n),
            tls: clientTls({ ca: o.ca ?? process.env.FANOUT_CA }),
            idleMs: Number(o.exitAfterIdle) * 1000,
            signal: stop.signal,
            onProgress: (p) => {
              const line = `${p.installed} installed, ${p.failed} failed of ${p.endpoints} endpoints; p99 ${p.p99Ms} ms`;
              if (!o.json && line !== last) process.stderr.write(`${line}\n`);
              last = line;
            },
          });
          print(
            o.json,
            r,
            () =>
              `${r.endpoints} endpoints: ${r.installed} installed, ${r.failed} failed; assignment p50 ${r.p50Ms} ms, p99 ${r.p99Ms} ms; ${r.bytes} bytes checked` +
              Object.entries(r.failures)
                .map(([why, n]) => `\n  ${n} × ${why}`)
                .join(''),
          );
          return r.failed ? 1 : 0;
        },
      ),
    );
}
