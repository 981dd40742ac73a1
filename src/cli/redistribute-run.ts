// What `fanout redistribute` does: find failed jobs, show the plan, ask, hand it to the relay, follow it.
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { confirm } from '@inquirer/prompts';
import { terminalSafe } from '../common/terminal.ts';
import { clientTls } from '../common/tls.ts';
import { Client } from '../protocol/client.ts';
import { FanoutError } from '../protocol/errors.ts';
import type { Plan } from '../protocol/types.ts';
import { follow } from '../redistribute/follow.ts';
import {
  approveInLog,
  masterOfRelay,
  NotInJobLog,
  plansFromLog,
  relayAdminToken,
  relayInfo,
  relayRunning,
} from '../redistribute/local.ts';
import { describePlan } from '../relay/plan.ts';
import { type MasterForPlans, offline } from '../relay/plan-master.ts';
import { CliError, printJson, tokenFrom } from './common.ts';

export interface Flags {
  data?: string;
  relay?: string;
  token?: string;
  tokenFile?: string;
  ca?: string;
  clientCert?: string;
  clientKey?: string;
  job?: string;
  yes?: boolean;
  dryRun?: boolean;
  json?: boolean;
  by: string;
  timeout: string;
}

// A plan's names and reasons come from the job log and the relay: shown, never obeyed (terminal.ts).
const out = (json: boolean | undefined, s: string) =>
  (json ? process.stderr : process.stdout).write(`${terminalSafe(s)}\n`);

async function ask(question: string): Promise<boolean> {
  try {
    return await confirm(
      { message: terminalSafe(question), default: false },
      { input: process.stdin, output: process.stderr },
    );
  } catch (e) {
    if ((e as Error).name === 'ExitPromptError' || (e as Error).name === 'AbortPromptError') return false;
    throw e;
  }
}

/** The relay's master as the relay would ask it, when it answers now; else the job log alone. */
async function masterWhileDown(data: string, json?: boolean): Promise<MasterForPlans> {
  const link = masterOfRelay(data);
  if (!link) {
    out(json, 'the relay is not running, and left no way to its master here: planning from its job log alone');
    return offline;
  }
  // The first question tells whether the master answers; its answer serves the plans too.
  const open = await link.master.openFailed().catch((e: Error) => e);
  if (open instanceof Error) {
    out(
      json,
      `the relay is not running, and its master at ${link.url} did not answer (${open.message}): planning from the job log alone`,
    );
    return offline;
  }
  out(json, `the relay is not running: planning from its job log and from what its master at ${link.url} knows`);
  return { ...link.master, openFailed: async () => open };
}

export async function runRedistribute(o: Flags): Promise<number> {
  if (!o.data === !o.relay) throw new CliError("give --data DIR (on the relay's host) or --relay URL");
  const data = o.data ? resolve(o.data) : undefined;
  const info = data ? relayInfo(data) : undefined;
  const token = tokenFrom(o) ?? (data ? relayAdminToken(data) : undefined);
  const url = o.relay ?? info?.url;
  const tls = clientTls({ ca: o.ca, clientCert: o.clientCert, clientKey: o.clientKey });
  const client = url && token ? new Client({ baseUrl: url, token, tls }) : undefined;
  if (o.relay && !token) throw new CliError("--relay needs --token-file (the relay's DATA/admin.token)");

  let plans: Plan[];
  let skipped: { jobId: string; reason: string }[];
  // A running relay plans with what its master knows too (targets that moved on through another
  // relay). While it is down, the log is read here, and the master asked as the relay would.
  let master = offline;
  if (data && !(client && relayRunning(data))) {
    if (!existsSync(join(data, 'jobs'))) throw new CliError(`${data} holds no job log (no jobs/ folder)`);
    if (!relayRunning(data)) master = await masterWhileDown(data, o.json);
    try {
      ({ plans, skipped } = await plansFromLog(data, info?.id ?? 'relay', o.job, master));
    } catch (e) {
      if (e instanceof NotInJobLog) throw new CliError(e.message);
      throw e;
    }
  } else ({ plans, skipped } = await client!.post('admin/v1/redistribute/plans', { jobId: o.job, dryRun: true }));

  for (const s of skipped) out(o.json, `job ${s.jobId}: ${s.reason}`);
  if (!plans.length) {
    out(o.json, 'nothing to redistribute');
    if (o.json) printJson({ plans: [], skipped });
    return 0;
  }
  const result: Plan[] = [];
  let failed = false;
  let declined = false;
  for (const plan of plans) {
    out(o.json, describePlan(plan));
    if (o.dryRun) {
      result.push(plan);
      continue;
    }
    const ok = o.yes || (await ask(`Redistribute job ${plan.jobId} to ${plan.distributionList.length} target(s)?`));
    if (!ok) {
      out(o.json, `not approved: nothing was changed for job ${plan.jobId}`);
      declined = true;
      result.push(plan);
      continue;
    }
    let approved: Plan;
    let followable = !!client;
    if (data && !relayRunning(data)) {
      // The relay is down (its process is gone): the approval goes into its job log and runs at its next start.
      approved = await approveInLog(data, plan, o.by, master).catch((e) => {
        if (e instanceof FanoutError) throw e;
        if (e instanceof NotInJobLog) throw new CliError(e.message);
        throw new CliError(
          `job ${plan.jobId}: the master could not be asked to sign its expired command again (${(e as Error).message}); approve the plan once the master answers, or start the relay and approve it there`,
        );
      });
      out(
        o.json,
        `the relay is not running: command ${approved.commandId} is in the job log and runs when the relay starts`,
      );
      followable = false;
    } else {
      if (!client)
        throw new CliError(`the relay in ${data} is running but left no relay.json or admin.token to reach it`);
      // Only now is the plan recorded, by the relay itself; it is approved only if it is the one shown.
      const { plans: recorded } = await client.post<{ plans: Plan[] }>('admin/v1/redistribute/plans', {
        jobId: plan.jobId,
      });
      const same = recorded.find((p) => p.distributionList.join() === plan.distributionList.join());
      if (!same)
        throw new CliError(`the relay's plan for job ${plan.jobId} differs from the one shown; run the tool again`);
      ({ plan: approved } = await client.post(
        `admin/v1/redistribute/plans/${encodeURIComponent(same.planId)}/approve`,
        { by: o.by },
      ));
    }
    out(o.json, `approved by ${o.by}: command ${approved.commandId} repeats ${approved.repeats}`);
    if (followable) {
      const end = await follow(client!, plan.jobId, Number(o.timeout) * 1000, o.json);
      out(o.json, `job ${plan.jobId}: ${end}`);
      if (end !== 'complete') failed = true;
      const now = (await client!.get<{ plans: Plan[] }>('admin/v1/redistribute/plans')).plans.find(
        (p) => p.planId === approved.planId,
      );
      approved = now ?? approved;
    }
    result.push(approved);
  }
  if (o.json)
    printJson({
      plans: result.map((p) => ({
        planId: p.planId,
        jobId: p.jobId,
        relayId: p.relayId,
        repeats: p.repeats,
        distributionList: p.distributionList,
        packages: p.packages,
        state: p.state,
        commandId: p.commandId,
        bytesToSend: p.bytesToSend,
        targetsHoldingContent: p.targetsHoldingContent ?? 0,
        movedOn: p.original.movedOn ?? [],
      })),
      skipped,
    });
  // A script can tell "done" (0) from "failed" (1) and "the operator said no" (2).
  return failed ? 1 : declined ? 2 : 0;
}
