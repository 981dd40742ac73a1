// The one executable: a subcommand per daemon and per operator task (DESIGN §11).
import { Command, Option } from 'commander';
import { adminCommands } from './cli/admin.ts';
import { agentCommand } from './cli/agent.ts';
import { alertCommands } from './cli/alerts.ts';
import { action, CliError, parseSize, tlsOptions, tokenFrom, withClientTls, withServerTls } from './cli/common.ts';
import { fleetCommand } from './cli/fleet.ts';
import { outageCommands } from './cli/outages.ts';
import { peopleCommands } from './cli/people.ts';
import { planCommands } from './cli/plans.ts';
import { swarmCommand } from './cli/swarm.ts';

const deviceToken = (o: { token?: string; tokenFile?: string }) => {
  const t = tokenFrom(o);
  if (!t) throw new CliError('no device token: pass --token-file FILE (or --token)');
  return t;
};

import { jobCommands } from './cli/jobs.ts';
import { redistributeCommand } from './cli/redistribute.ts';

const program = new Command('fanout')
  .description('Distribute packages master → relays → endpoints, and repair what fails.')
  .version('0.1.0')
  .showHelpAfterError('(run with --help for usage)');

withServerTls(
  withClientTls(
    program
      .command('master')
      .description('start the master: inventory, packages, jobs, alert center, mail, dashboard')
      .requiredOption('--data <dir>', 'state folder (admin.token, signing key, master.db, blobs)')
      .option('--listen <host:port>', 'address to listen on', '127.0.0.1:8470')
      .addOption(
        new Option(
          '--db <url>',
          'postgres://… for PostgreSQL (default: SQLite in DATA/master.db); behind a pooler that cannot keep prepared statements, set FANOUT_PG_PREPARE=off',
        ).env('FANOUT_DB'),
      )
      .option('--config <file>', 'config file (default: DATA/fanout.yaml; every setting: docs/fanout.example.yaml)')
      .option(
        '--signing-key <file>',
        'the signing key file, shared by masters on one database (default: DATA/signing.key)',
      )
      .option(
        '--blobs <where>',
        'package content: "postgres" (in the --db database) or a folder shared by masters (default: DATA/blobs)',
      )
      .option('--allow-faults', 'accept FANOUT_FAULTS and /admin/v1/faults (tests and lab only)'),
  ),
).action(
  action(async (o) => {
    const { runMaster } = await import('./master/main.ts');
    await runMaster({
      data: o.data,
      listen: o.listen,
      db: o.db,
      config: o.config,
      allowFaults: o.allowFaults,
      signingKey: o.signingKey,
      blobs: o.blobs,
      ...tlsOptions(o),
    });
  }),
);

withServerTls(
  withClientTls(
    program
      .command('relay')
      .description('start a relay: job log, depot, distribution manager, admin API')
      .requiredOption(
        '--master <url>',
        'the master URL (commands and reports); repeat it for several masters on one database, used in turn when one is down',
        (url: string, all: string[] = []) => [...all, url],
      )
      .requiredOption('--id <id>', "this relay's device id")
      .addOption(
        new Option('--token-file <file>', "a file holding this relay's device token (mode 0600)").env(
          'FANOUT_TOKEN_FILE',
        ),
      )
      .addOption(new Option('--token <token>', "this relay's device token (prefer --token-file)").env('FANOUT_TOKEN'))
      .requiredOption('--data <dir>', 'state folder (jobs/, depot/, admin.token)')
      .option('--listen <host:port>', 'address to listen on', '127.0.0.1:8471')
      .option('--upstream <url>', 'fetch content from this relay instead of the master')
      .option('--heartbeat-ms <ms>', 'heartbeat interval', '5000')
      .option(
        '--depot-max-bytes <size>',
        "cap the depot (e.g. 500MB, 20GB): past it, content no open job needs goes, least recently used first (default: the master's depot.maxBytes)",
      )
      .option(
        '--master-key <fingerprint>',
        "pin the master's key from the start (SHA256:…, printed by `inventory import --json`)",
      )
      .option('--allow-faults', 'accept FANOUT_FAULTS and /admin/v1/faults (tests and lab only)'),
  ),
).action(
  action(async (o) => {
    const { runRelay } = await import('./relay/main.ts');
    await runRelay({
      master: o.master,
      id: o.id,
      token: deviceToken(o),
      data: o.data,
      listen: o.listen,
      upstream: o.upstream,
      allowFaults: o.allowFaults,
      heartbeatMs: Number(o.heartbeatMs),
      masterKey: o.masterKey,
      depotMaxBytes: o.depotMaxBytes === undefined ? undefined : parseSize(o.depotMaxBytes, '--depot-max-bytes'),
      ...tlsOptions(o),
    });
  }),
);

agentCommand(program);

program
  .command('lab')
  .description('start a whole network on this machine (master, relays, agents, mail sink) and run a scenario')
  .option('--data <dir>', 'where the lab keeps its state', '.lab')
  .option('--port <port>', "the master's port (dashboard)", '8470')
  .option('--relays <n>', 'how many relays', '2')
  .option('--agents <n>', 'how many agents (endpoints), dealt round the relays', '6')
  .addOption(new Option('--scenario <name>', 'what to run').choices(['none', 'repair']).default('repair'))
  .option('--exit-after-scenario', 'exit when the scenario ends: 0 when it ended well, 1 otherwise')
  .option('--no-tls', 'plain HTTP (default: TLS with a CA the lab makes in DATA/tls)')
  .action(
    action(async (o) => {
      const { runLab } = await import('./lab/lab.ts');
      return runLab({
        data: o.data,
        port: Number(o.port),
        relays: Number(o.relays),
        agents: Number(o.agents),
        scenario: o.scenario,
        exitAfterScenario: !!o.exitAfterScenario,
        tls: o.tls,
      });
    }),
  );

adminCommands(program);
fleetCommand(program);
swarmCommand(program);
peopleCommands(program);
jobCommands(program);
alertCommands(program);
outageCommands(program);
planCommands(program);
redistributeCommand(program);

await program.parseAsync(process.argv);
