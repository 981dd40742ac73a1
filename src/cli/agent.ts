// `fanout agent`: the daemon on an endpoint (its flags; the work is in src/agent).
import { type Command, Option } from 'commander';
import { action, CliError, tlsOptions, tokenFrom, withClientTls, withServerTls } from './common.ts';

function deviceToken(o: { token?: string; tokenFile?: string }) {
  const t = tokenFrom(o);
  if (!t) throw new CliError('no device token: pass --token-file FILE (or --token)');
  return t;
}

export function agentCommand(program: Command) {
  withServerTls(
    withClientTls(
      program
        .command('agent')
        .description('start an agent on an endpoint: download, verify, install, report')
        .requiredOption('--relay <url>', "this endpoint's relay")
        .requiredOption('--id <id>', "this endpoint's device id")
        .addOption(
          new Option('--token-file <file>', "a file holding this endpoint's device token (mode 0600)").env(
            'FANOUT_TOKEN_FILE',
          ),
        )
        .addOption(
          new Option('--token <token>', "this endpoint's device token (prefer --token-file)").env('FANOUT_TOKEN'),
        )
        .requiredOption('--data <dir>', 'state folder (installed.json, journal.jsonl, cache/)')
        .requiredOption('--root <dir>', 'install root: packages go to ROOT/NAME/VERSION, ROOT/NAME/current')
        .option('--listen <host:port>', 'serve /healthz, /metrics and faults on this address', '127.0.0.1:0')
        .option(
          '--master-key <fingerprint>',
          "pin the master's key from the start (SHA256:…, printed by `inventory import --json`)",
        )
        .option('--keep-versions <n>', 'versions of each package kept installed; older ones are removed', '2')
        .option(
          '--failover-after <duration>',
          'turn to the next fallback relay (inventory fallbackRelays) when this one is unreachable this long',
          '2m',
        )
        .option(
          '--enroll-every <duration>',
          "read the enrollment at the relay again this often: fallback relays' new addresses, key rotations",
          '10m',
        )
        .option(
          '--verify-every <duration>',
          'hash installed versions again this often and report drift (e.g. 30m, 6h; 0: only when asked)',
          '6h',
        )
        .option('--allow-faults', 'accept FANOUT_FAULTS (tests and lab only)'),
    ),
  ).action(
    action(async (o) => {
      const { runAgent } = await import('../agent/main.ts');
      const { parseDuration } = await import('../protocol/durations.ts');
      const keepVersions = Number(o.keepVersions);
      if (!Number.isInteger(keepVersions) || keepVersions < 1)
        throw new CliError(`--keep-versions must be a whole number of at least 1, not "${o.keepVersions}"`);
      await runAgent({
        relay: o.relay,
        id: o.id,
        token: deviceToken(o),
        data: o.data,
        root: o.root,
        allowFaults: o.allowFaults,
        listen: o.listen,
        masterKey: o.masterKey,
        keepVersions,
        verifyEveryMs: o.verifyEvery === '0' ? 0 : parseDuration(o.verifyEvery),
        failoverAfterMs: parseDuration(o.failoverAfter),
        enrollEveryMs: parseDuration(o.enrollEvery),
        ...tlsOptions(o),
      });
    }),
  );
}
