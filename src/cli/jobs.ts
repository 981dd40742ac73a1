// `fanout job …`: create a job, follow it, list jobs.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Command } from 'commander';
import {
  action,
  CliError,
  collect,
  keyValues,
  listUrl,
  type MasterFlags,
  masterClient,
  print,
  table,
  withMaster,
  withPaging,
} from './common.ts';
import { rollbackCommand } from './rollback.ts';
import { type CreateFlags, ringText, rolloutCommands, rolloutFlags, rolloutSummary } from './rollouts.ts';

export function jobCommands(program: Command) {
  const job = program.command('job').description('distribution jobs');
  withMaster(job.command('create').description('create a job: packages to targets (by id or label)'))
    .option('--package <name@version>', 'a package (repeat for more)', collect)
    .option('--target <id>', 'an endpoint (repeat for more)', collect)
    .option('--label <k=v>', 'endpoints with this label (repeat: all must match)', collect)
    .option(
      '--param <k=v>',
      'installRoot, timeoutSec, preCommand, postCommand, deadline, maxAttempts, rateLimitKBps',
      collect,
    )
    .option('--uninstall <name>', 'remove this package from the targets (runs its uninstall.run first)')
    .option('--rings <percents>', 'roll out in rings, cumulative shares of the targets: 1%,10%,50%,100%')
    .option('--halt-on-failure-rate <percent>', 'halt the rollout when a ring fails more than this (e.g. 5%)')
    .option('--ring-wait <duration>', 'wait this long after a ring ended before the next starts (e.g. 10m)')
    .addHelpText(
      'after',
      `
Parameters:
  deadline=30m | 2026-11-25T06:00:00Z   targets not installed by then end as failed (default 1h)
  maxAttempts=3                         install attempts per target
  timeoutSec=120                        install script timeout (default: the package's own)
  rateLimitKBps=512                     each relay's rate from its upstream, and its total serving of the job
  installRoot=/opt/apps                 instead of the agent's --root
  preCommand=… postCommand=…            shell commands run around the install script

Examples:
  fanout job create --package pos-app@2.4.1 --package pos-config@1.0.0 --label role=pos
  fanout job create --package pos-app@2.4.1 --target pos-0042-01 --param deadline=2h --json
  fanout job create --package pos-app@2.5.0 --label role=pos --rings 1%,10%,50%,100% \\
      --halt-on-failure-rate 5% --ring-wait 10m      # then: job status ID, job resume ID, job abort ID`,
    )
    .action(
      action(async (o: CreateFlags) => {
        if (!o.package?.length && !o.uninstall)
          throw new CliError('give at least one --package NAME@VERSION (or --uninstall NAME)');
        if (o.package?.length && o.uninstall) throw new CliError('a job installs (--package) or uninstalls, not both');
        const params: Record<string, unknown> = {
          ...keyValues(o.param, '--param'),
          ...(o.uninstall ? { uninstall: o.uninstall } : {}),
        };
        const r = await masterClient(o).post('api/v1/jobs', {
          packages: o.package ?? [],
          targets: o.target,
          labels: o.label ? keyValues(o.label, '--label') : undefined,
          params,
          ...rolloutFlags(o),
        });
        print(
          o.json,
          r.rollout ? { jobId: r.jobId, state: r.state, rings: r.rings } : { jobId: r.jobId, commands: r.commands },
          () =>
            r.rollout
              ? `${r.jobId} (rollout: ${r.rings.map((g: any) => g.devices.length).join(' + ')} targets)`
              : r.jobId,
        );
      }),
    );
  const jobView = (r: any) =>
    r.rollout
      ? rolloutSummary(r)
      : {
          jobId: r.jobId,
          state: r.state,
          createdAt: r.createdAt,
          createdBy: r.createdBy,
          counts: r.counts,
          ringOf: r.ringOf ?? null,
          relays: r.relays,
          targets: r.targets.map((t: any) => ({
            deviceId: t.deviceId,
            relayId: t.relayId,
            state: t.state,
            failureType: t.failureType,
            error: t.error,
            attempt: t.attempt,
          })),
        };
  const human = (r: any) =>
    r.rollout
      ? `rollout ${r.jobId}: ${r.state}${r.reason ? ` (${r.reason})` : ''}\n` +
        table(rolloutSummary(r).rings, ['ring', 'percent', 'jobId', 'state', 'targets', 'failureRate'])
      : `job ${r.jobId}: ${r.state} (${Object.entries(r.counts)
          .map(([k, v]) => `${v} ${k}`)
          .join(', ')})${r.ringOf ? `, ${ringText(r.ringOf)}` : ''}\n` +
        table(r.targets, ['deviceId', 'relayId', 'state', 'failureType', 'error']);
  withMaster(job.command('status <id>').description('a job, per relay and target')).action(
    action(async (id: string, f: MasterFlags) => {
      const r = await masterClient(f).get(`api/v1/jobs/${encodeURIComponent(id)}`);
      print(f.json, jobView(r), () => human(r));
    }),
  );
  withMaster(
    job.command('wait <id>').description('wait until a job ends: exit 0 when complete, 1 when failed or timed out'),
  )
    .option('--timeout <seconds>', 'give up after this long', '600')
    .action(
      action(async (id: string, o: MasterFlags & { timeout: string }) => {
        const client = masterClient(o);
        const until = Date.now() + Number(o.timeout) * 1000;
        const { Progress } = await import('../common/progress.ts');
        const progress = new Progress(id, process.stderr, o.json);
        for (;;) {
          const asked = Date.now();
          const r = await client.get(`api/v1/jobs/${encodeURIComponent(id)}`);
          const others = Object.entries(r.counts)
            .filter(([k]) => k !== 'installed')
            .map(([k, v]) => `${v} ${k}`)
            .join(', ');
          progress.update(
            r.counts.installed ?? 0,
            r.targets?.length ?? r.total,
            `${r.state}${others ? ` (${others})` : ''}`,
          );
          if (r.state !== 'running' || Date.now() > until) {
            progress.stop();
            const timedOut = r.state === 'running';
            print(
              o.json,
              { ...jobView(r), ...(timedOut ? { timedOut: true } : {}) },
              () => human(r) + (timedOut ? `\ntimed out after ${o.timeout}s` : ''),
            );
            return r.state === 'complete' ? 0 : 1;
          }
          // As often as the answer is cheap (a small job's end shows within ~0.1 s), but waiting at
          // least as long as the last answer took: a large job's status costs the master more.
          await sleep(Math.min(500, Math.max(100, Date.now() - asked)));
        }
      }),
    );
  withPaging(
    withMaster(
      job
        .command('list')
        .description("recent jobs, newest first; a rollout's rings are listed as their jobs, each naming its rollout")
        .option('--state <state>', 'only jobs in this state: running, complete, failed'),
    ),
    '100',
  ).action(
    action(async (f: MasterFlags) => {
      const r = await masterClient(f).get(listUrl('api/v1/jobs', f, ['state']));
      print(f.json, r.map(jobView), () =>
        table(
          r.map((j: any) => ({
            jobId: j.jobId,
            state: j.state,
            createdAt: j.createdAt,
            createdBy: j.createdBy,
            targets: Object.entries(j.counts)
              .map(([k, v]) => `${v} ${k}`)
              .join(', '),
            rollout: j.ringOf ? ringText(j.ringOf) : '',
          })),
          ['jobId', 'state', 'createdAt', 'createdBy', 'targets', 'rollout'],
        ),
      );
    }),
  );
  withMaster(
    job
      .command('cancel <id>')
      .description('stop a running job at its relays: targets not installed yet end as failed (CANCELLED)')
      .addHelpText(
        'after',
        `
The master signs the cancel; each relay ends the job's open targets as CANCELLED, naming you. An
endpoint that has not begun installing (downloading, or waiting for its maintenance window) hears at
once and installs nothing. One already installing finishes; its target then shows installed, as its
disk says. A cancelled job is never redistributed, and the master signs its command for no
longer: to send it again, create a new job. For a rollout, use \`fanout job abort ID\`.`,
      ),
  ).action(
    action(async (id: string, f: MasterFlags) => {
      const r = await masterClient(f).post(`api/v1/jobs/${encodeURIComponent(id)}/cancel`);
      print(f.json, r, () => `job ${r.jobId}: cancel sent to its relays; \`fanout job wait ${r.jobId}\` follows it`);
    }),
  );
  rollbackCommand(job);
  rolloutCommands(job);
}
