// `fanout plans list`, `fanout plan show|approve|reject ID`: redistribution plans as the master mirrors
// them (DESIGN §16); the relay that built a plan carries out the decision.
import { hostname, userInfo } from 'node:os';
import type { Command } from 'commander';
import type { Plan } from '../protocol/types.ts';
import { action, listUrl, type MasterFlags, masterClient, print, table, withMaster, withPaging } from './common.ts';

export function planCommands(program: Command) {
  const plans = program.command('plans').description('redistribution plans');
  withPaging(withMaster(plans.command('list').description('plans at the master, newest first')))
    .option(
      '--state <state>',
      'only plans in this state: pending, approved, running, complete, failed, rejected, superseded',
    )
    .action(
      action(async (o: MasterFlags) => {
        const r = await masterClient(o).get<Record<string, unknown>[]>(listUrl('api/v1/plans', o, ['state']));
        print(o.json, r, () =>
          table(
            r.map((p) => ({ ...p, targets: (p.distributionList as string[]).length })),
            ['planId', 'jobId', 'relayId', 'state', 'targets', 'approvedBy'],
          ),
        );
      }),
    );
  const plan = program.command('plan').description('one redistribution plan');
  withMaster(
    plan
      .command('show <id>')
      .description('a plan whole: its targets, packages, bytes, and the targets it leaves out and why'),
  ).action(
    action(async (id: string, o: MasterFlags) => {
      const p = await masterClient(o).get<Plan>(`api/v1/plans/${encodeURIComponent(id)}`);
      // Loaded here: the relay's plan module and its crypto are not what every command starts with.
      const { describePlan } = await import('../relay/plan.ts');
      print(o.json, p, () =>
        [
          describePlan(p),
          `  made              ${p.createdAt}`,
          ...(p.approvedBy
            ? [`  approved by       ${p.approvedBy}${p.commandId ? ` (command ${p.commandId})` : ''}`]
            : []),
        ].join('\n'),
      );
    }),
  );
  for (const decision of ['approve', 'reject'] as const)
    withMaster(
      plan.command(`${decision} <id>`).description(`${decision} a pending plan (the relay that built it is told)`),
    )
      .option('--by <name>', 'who decides (kept in the job log)', `${userInfo().username}@${hostname()}`)
      .action(
        action(async (id: string, o: MasterFlags & { by: string }) => {
          const { plan: p } = await masterClient(o).post(`api/v1/plans/${encodeURIComponent(id)}/${decision}`, {
            by: o.by,
          });
          print(o.json, p, () => `plan ${p.planId} for job ${p.jobId} on ${p.relayId}: ${p.state} (by ${o.by})`);
        }),
      );
}
