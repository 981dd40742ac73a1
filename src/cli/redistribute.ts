// `fanout redistribute`: the command's options; what it does is in redistribute-run.ts, loaded when it runs.
import { hostname, userInfo } from 'node:os';
import type { Command } from 'commander';
import { action, withClientTls } from './common.ts';
import type { Flags } from './redistribute-run.ts';

export function redistributeCommand(program: Command) {
  withClientTls(program.command('redistribute'))
    .description("rebuild failed distributions from a relay's job log and, on approval, send what is still missing")
    .option(
      '--data <dir>',
      "the relay's data folder (on the relay's host): read the job log directly; with the relay down, the master is asked as the relay would (relay.json, master.token)",
    )
    .option('--relay <url>', "a relay's URL: it builds the plans through its admin API")
    .option('--token-file <file>', "a file holding the relay's admin token (default: DATA/admin.token)")
    .option('--token <token>', "the relay's admin token (prefer --token-file)", process.env.FANOUT_RELAY_TOKEN)
    .option('--job <id>', 'only this job (default: every failed job in the job log)')
    .option('--yes', 'approve without asking')
    .option('--dry-run', 'only show the plans')
    .option('--json', 'print {"plans":[…]} (prompts go to stderr)')
    .option('--by <name>', 'who approves (kept in the job log)', `${userInfo().username}@${hostname()}`)
    .option('--timeout <seconds>', 'how long to follow the redistribution', '600')
    .addHelpText(
      'after',
      `
Examples:
  on the relay's host:   fanout redistribute --data /var/lib/fanout/relay --dry-run
  from anywhere:         fanout redistribute --relay https://relay-dal:8471 --token-file relay-admin.token --job j-42 --yes

Exit status: 0 approved (and, when followed, complete) or nothing to do; 1 a redistribution failed;
2 a plan was declined at the prompt (nothing changed); 3 the relay could not be reached.`,
    )
    .action(
      action(async (o: Flags) => {
        const { runRedistribute } = await import('./redistribute-run.ts');
        return runRedistribute(o);
      }),
    );
}
