// `fanout user …` and `fanout audit list`: people with roles, and who changed what.
import { type Command, Option } from 'commander';
import { action, listUrl, type MasterFlags, masterClient, print, table, withMaster, withPaging } from './common.ts';

export function peopleCommands(program: Command) {
  const user = program.command('user').description('people who use the master, with their roles');
  withMaster(
    user
      .command('add <name>')
      .description('add a person (or give one a new token and role); prints their token once')
      .addOption(
        new Option(
          '--role <role>',
          'viewer: reads; operator: also approves plans, resolves tickets, manages outages; admin: everything',
        )
          .choices(['admin', 'operator', 'viewer'])
          .makeOptionMandatory(),
      ),
  ).action(
    action(async (name: string, o: MasterFlags & { role: string }) => {
      const r = await masterClient(o).post('api/v1/users', { name, role: o.role });
      print(
        o.json,
        r,
        () => `${r.name} (${r.role}): ${r.token}\n(shown once: keep it in a 0600 file; the dashboard asks for it)`,
      );
    }),
  );
  withMaster(user.command('list').description('people and their roles')).action(
    action(async (o: MasterFlags) => {
      const r = await masterClient(o).get('api/v1/users');
      print(o.json, r, () => table(r, ['name', 'role', 'createdAt']));
    }),
  );
  withMaster(user.command('remove <name>').description('remove a person: their token stops working')).action(
    action(async (name: string, o: MasterFlags) => {
      const r = await masterClient(o).json('DELETE', `api/v1/users/${encodeURIComponent(name)}`);
      print(o.json, r, () => `removed ${r.name}`);
    }),
  );
  const audit = program.command('audit').description('the audit log: every change, who made it, when, from where');
  withPaging(withMaster(audit.command('list').description('changes, newest first')))
    .option('--who <name>', "one person's changes (admin: the master's token)")
    .option('--target <id>', 'changes to one thing: a job, plan, ticket, outage, package (name@version)…')
    .option('--action <text>', 'actions containing this, e.g. overrides, plans, jobs')
    .option('--since <time>', 'from this time on (ISO-8601: 2026-11-01 or 2026-11-01T08:00:00Z)')
    .action(
      action(async (o: MasterFlags) => {
        const r = await masterClient(o).get(listUrl('api/v1/audit', o, ['who', 'target', 'action', 'since']));
        print(o.json, r, () => table(r, ['at', 'who', 'action', 'target', 'from']));
      }),
    );
}
