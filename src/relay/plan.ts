// Steps 1–3 of DESIGN §7: from a job log to a `redistribute` command for exactly what is still missing.

import { authorityOf } from '../protocol/command.ts';
import { newId } from '../protocol/crypto.ts';
import type { DistributionCommand, Plan, SignedHeader, SkippedJob } from '../protocol/types.ts';
import type { JobState } from './state.ts';

export type PlanResult = { ok: true; plan: Plan } | ({ ok: false } & SkippedJob);

/** The master cancelled the job (a signed cancel): it is never redistributed; a new job sends it again. */
export const cancelled = (st: JobState) => st.phase === 'failed' && st.failure?.failureType === 'CANCELLED';

/** Jobs worth a plan: ended as failed, not cancelled, with targets not installed. */
export function needsRedistribution(st: JobState) {
  return (
    st.phase === 'failed' &&
    !cancelled(st) &&
    st.original.distributionList.some((d) => st.targets.get(d)?.state !== 'installed')
  );
}

export function buildPlan(
  st: JobState,
  relayId: string,
  depotHas: (digest: string) => boolean,
  now = new Date(),
  /** Of the targets not installed, those a later job moved on to a newer version, and why (moved-on.ts). */
  movedOn: (notInstalled: string[]) => Map<string, string> = () => new Map(),
): PlanResult {
  if (st.phase === 'complete')
    return { ok: false, jobId: st.jobId, reason: 'every target is installed; nothing to redistribute' };
  if (cancelled(st))
    return {
      ok: false,
      jobId: st.jobId,
      reason: `${st.failure!.message}: a cancelled job is not redistributed; create a new job to send it again`,
    };
  if (st.phase !== 'failed')
    return {
      ok: false,
      jobId: st.jobId,
      reason: `the job is still ${st.phase}; wait for it to end (or for its deadline)`,
    };
  const installed = st.original.distributionList.filter((d) => st.targets.get(d)?.state === 'installed');
  const notInstalled = st.original.distributionList.filter((d) => st.targets.get(d)?.state !== 'installed');
  if (!notInstalled.length)
    return { ok: false, jobId: st.jobId, reason: 'every target is installed; nothing to redistribute' };
  const moved = movedOn(notInstalled);
  const missing = notInstalled.filter((d) => !moved.has(d));
  if (!missing.length)
    return {
      ok: false,
      jobId: st.jobId,
      reason: `every target not installed has moved on to a newer version (${[...moved].map(([d, why]) => `${d}: ${why}`).join('; ')}); nothing to redistribute`,
      settled: true,
    };
  const bytesPerTarget = st.current.packages.reduce((n, p) => n + p.size, 0);
  const bytesInDepot = st.current.packages.filter((p) => depotHas(p.digest)).reduce((n, p) => n + p.size, 0);
  // Endpoints that verified the content before failing (an install script, a window) fetch nothing.
  const holding = missing.filter((d) => st.targets.get(d)?.held).length;
  return {
    ok: true,
    plan: {
      planId: newId('p'),
      relayId,
      jobId: st.jobId,
      repeats: st.current.commandId,
      packages: st.current.packages,
      params: st.current.params,
      distributionList: missing,
      original: {
        distributionList: st.original.distributionList,
        installed,
        ...(moved.size ? { movedOn: [...moved].map(([deviceId, why]) => ({ deviceId, why })) } : {}),
      },
      // What goes to endpoints, plus what must still come from upstream.
      bytesToSend: bytesPerTarget * (missing.length - holding) + (bytesPerTarget - bytesInDepot),
      bytesInDepot,
      targetsHoldingContent: holding,
      state: 'pending',
      createdAt: now.toISOString(),
    },
  };
}

/**
 * The command an approved plan becomes: a new id, the same packages and parameters as the master's
 * signed original (which it carries), and a narrower list. It adds no authority of its own.
 */
export function commandFromPlan(
  st: JobState,
  plan: Plan,
  approvedBy: string,
  original?: SignedHeader,
): DistributionCommand {
  const now = new Date();
  const authority = original ?? authorityOf(st.current);
  return {
    commandId: newId('r'),
    seq: st.original.seq,
    jobId: st.jobId,
    relayId: plan.relayId,
    kind: 'redistribute',
    // As the master signed them in the authority (again, when it renewed it after a key rotation).
    packages: authority?.header.packages ?? plan.packages,
    distributionList: plan.distributionList,
    params: plan.params,
    issuedAt: now.toISOString(),
    issuedBy: approvedBy,
    repeats: plan.repeats,
    original: authority,
  };
}

export function formatBytes(n: number) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

/** The plan as an operator reads it before approving. */
export function describePlan(p: Plan): string {
  const removed = p.original.installed;
  return [
    `Plan ${p.planId} for job ${p.jobId} on relay ${p.relayId} (${p.state})`,
    `  repeats command   ${p.repeats}`,
    `  packages          ${p.packages.map((x) => `${x.name}@${x.version} (${formatBytes(x.size)})`).join(', ')}`,
    `  parameters        ${
      Object.keys(p.params).length
        ? Object.entries(p.params)
            .map(([k, v]) => `${k}=${v}`)
            .join(' ')
        : '(none)'
    }`,
    `  recipients (${p.distributionList.length})    ${p.distributionList.join(', ')}`,
    `  against original  ${p.original.distributionList.length} target(s); ${removed.length} already installed and left out${removed.length ? `: ${removed.join(', ')}` : ''}`,
    ...(p.original.movedOn?.length
      ? [
          `  moved on          ${p.original.movedOn.length} target(s) left out, a later job installed a newer version (the endpoint would refuse this one): ${p.original.movedOn.map((m) => `${m.deviceId} (${m.why})`).join(', ')}`,
        ]
      : []),
    `  bytes to send     ${formatBytes(p.bytesToSend)} (${formatBytes(p.bytesInDepot)} of content already verified in the depot, not fetched again; ${p.targetsHoldingContent ?? 0} endpoint(s) already hold it verified, sent nothing)`,
  ].join('\n');
}
