// Rollouts on the command line (DESIGN §13): the ring flags of `job create`, and `job resume|abort`.
import type { Command } from 'commander';
import { action, CliError, type MasterFlags, masterClient, print, withMaster } from './common.ts';

export function rolloutCommands(job: Command) {
  for (const [verb, what] of [
    ['resume', 'start the next ring of a halted rollout (the failed ring is accepted as it ended)'],
    ['abort', 'stop a rollout: its running ring is cancelled at the relays, later rings never start'],
  ] as const)
    withMaster(job.command(`${verb} <id>`).description(what)).action(
      action(async (id: string, f: MasterFlags) => {
        const r = await masterClient(f).post(`api/v1/jobs/${encodeURIComponent(id)}/${verb}`);
        print(f.json, { jobId: r.jobId, state: r.state }, () => `rollout ${r.jobId}: ${r.state}`);
      }),
    );
}

export type CreateFlags = MasterFlags & {
  package?: string[];
  target?: string[];
  label?: string[];
  param?: string[];
  uninstall?: string;
  rings?: string;
  haltOnFailureRate?: string;
  ringWait?: string;
};

const percent = (text: string, flag: string) => {
  const n = Number(text.trim().replace(/%$/, ''));
  if (!(n >= 0 && n <= 100)) throw new CliError(`${flag}: "${text}" is not a percentage like 5%`);
  return n;
};

export function rolloutFlags(o: CreateFlags) {
  if (!o.rings) {
    if (o.haltOnFailureRate || o.ringWait) throw new CliError('--halt-on-failure-rate and --ring-wait need --rings');
    return {};
  }
  return {
    rings: o.rings.split(',').map((p) => percent(p, '--rings')),
    ...(o.haltOnFailureRate ? { haltOnFailureRate: percent(o.haltOnFailureRate, '--halt-on-failure-rate') } : {}),
    ...(o.ringWait ? { ringWait: o.ringWait } : {}),
  };
}

export const rolloutSummary = (r: any) => ({
  jobId: r.jobId,
  state: r.state,
  rollout: true,
  reason: r.reason,
  createdAt: r.createdAt,
  createdBy: r.createdBy,
  counts: r.counts,
  rings: r.rings.map((g: any) => ({
    ring: g.ring,
    percent: g.percent,
    jobId: g.jobId ?? '-',
    state: g.state,
    targets: g.devices.length,
    failureRate: g.failureRate === null ? '-' : `${g.failureRate.toFixed(1)}%`,
  })),
});

/** A ring's job as `fanout job list` and `job status` name it: `ring 2 of 3 of rollout ID`. */
export const ringText = (g: { rollout: string; ring: number; of: number }) =>
  `ring ${g.ring} of ${g.of} of rollout ${g.rollout}`;
