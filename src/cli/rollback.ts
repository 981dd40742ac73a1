// `fanout job rollback ID [--dry-run]` (DESIGN §13): each target back at the version it ran before.
import type { Command } from 'commander';
import { action, type MasterFlags, masterClient, print, withMaster } from './common.ts';

export function rollbackCommand(job: Command) {
  withMaster(
    job
      .command('rollback <id>')
      .description('point each target of a job back at the version it ran before (signed allowDowngrade)')
      .option('--dry-run', 'only show the jobs it would make, and the targets with nothing earlier')
      .addHelpText(
        'after',
        `
A new job per earlier version found (usually one); a target with nothing earlier is left alone and
listed. Endpoints that still keep the earlier version (--keep-versions) switch \`current\` back without
downloading anything. Follow it with \`fanout job wait JOB\`.

  fanout job rollback j-… --dry-run    what would go back where
  fanout job rollback j-…              do it`,
      ),
  ).action(
    action(async (id: string, f: MasterFlags & { dryRun?: boolean }) => {
      const path = `api/v1/jobs/${encodeURIComponent(id)}/rollback`;
      if (f.dryRun) {
        const plan = await masterClient(f).get(path);
        print(f.json, plan, () => rollbackPlanText(plan));
        return;
      }
      const r = await masterClient(f).post(path);
      print(
        f.json,
        r,
        () =>
          `rollback of ${r.rollbackOf}: job ${r.jobs.join(', ')} (${r.state})${r.skipped.length ? `; nothing earlier on ${r.skipped.join(', ')}` : ''}`,
      );
    }),
  );
}

/** A rollback's dry run as an operator reads it: each job it would make, then who has nothing earlier. */
function rollbackPlanText(p: {
  rollbackOf: string;
  packages: string[];
  jobs: { packages: string[]; targets: string[] }[];
  skipped: string[];
}) {
  const lines = p.jobs.length
    ? [`rollback of ${p.rollbackOf} would make ${p.jobs.length} job(s) (nothing changed yet):`]
    : [`nothing to go back to: no target of ${p.rollbackOf} ran an earlier version of ${p.packages.join(', ')}`];
  for (const j of p.jobs) lines.push(`  ${j.packages.join(' ')} on ${j.targets.length} target(s): ${some(j.targets)}`);
  if (p.jobs.length && p.skipped.length)
    lines.push(`  nothing earlier, left alone: ${p.skipped.length} target(s): ${some(p.skipped)}`);
  return lines.join('\n');
}
/** Ten names, then how many more (--json has them all). */
const some = (ids: string[]) => ids.slice(0, 10).join(', ') + (ids.length > 10 ? ` and ${ids.length - 10} more` : '');
