// The agent protocol on a relay (DESIGN §5): what an endpoint should do now, and its reports.
import { EventEmitter } from 'node:events';
import { authorityOf } from '../protocol/command.ts';
import type { FailureType } from '../protocol/failure-types.ts';
import { ListTree } from '../protocol/signing.ts';
import type { Assignment, TargetState } from '../protocol/types.ts';
import type { RelayJobs } from './jobs.ts';
import type { Reporter } from './reporter.ts';
import type { JobState } from './state.ts';
import { agentStep, ended } from './targets.ts';

export interface AgentReport {
  jobId: string;
  commandId: string;
  state: TargetState;
  attempt?: number;
  failureType?: FailureType;
  error?: string;
  trees?: Record<string, string>;
}

export class AgentChannel {
  /** `assign:<deviceId>` when that device has something new to do. */
  readonly events = new EventEmitter().setMaxListeners(0);
  private readonly trees = new Map<string, ListTree>();

  constructor(
    private readonly relayId: string,
    private readonly jobs: RelayJobs,
    private readonly reporter: Reporter,
  ) {}

  offered(deviceId: string) {
    this.events.emit(`assign:${deviceId}`);
  }

  /** Every job where the device is a target of the command in force that has not ended. */
  assignmentsFor(deviceId: string): Assignment[] {
    const out: Assignment[] = [];
    for (const st of this.jobs.all()) {
      if (st.phase !== 'distributing' || !st.tally.members.has(deviceId)) continue;
      const t = st.targets.get(deviceId)!;
      if (ended(t.state)) continue;
      const authority = authorityOf(st.current);
      // Without the master's signature there is nothing an agent may install.
      if (!authority) continue;
      out.push({
        assignmentId: `${st.current.commandId}/${deviceId}/${t.attempt}`,
        jobId: st.jobId,
        commandId: st.current.commandId,
        attempt: t.attempt,
        kind: st.current.kind,
        packages: st.current.packages,
        params: st.current.params,
        authority,
        proof: this.proof(st, authority.header.commandId, deviceId),
      });
    }
    return out;
  }

  /** The device's proof in the list the authority signed: the original command's list. */
  private proof(st: JobState, commandId: string, deviceId: string): string[] {
    let tree = this.trees.get(commandId);
    if (!tree) {
      const list = st.original.commandId === commandId ? st.original.distributionList : st.current.distributionList;
      tree = new ListTree(list);
      this.trees.set(commandId, tree);
    }
    return tree.proof(deviceId) ?? [];
  }

  /** Resolves once the reports taken so far are on disk. */
  synced() {
    return this.jobs.synced();
  }

  /** An agent's report about its own target; refused (with why) for anything it was not given. */
  report(deviceId: string, r: AgentReport): { ok: true } | { ok: false; reason: string } {
    const st = this.jobs.get(r.jobId);
    if (!st?.tally.members.has(deviceId))
      return { ok: false, reason: `an assignment for ${deviceId} in job ${r.jobId}` };
    if (r.commandId !== st.current.commandId && r.state !== 'installed')
      return { ok: false, reason: 'a report for the command in force, not an earlier one' };
    // `installed` stands only with an attestation of every package's signed tree.
    if (r.state === 'installed' && r.commandId === st.current.commandId) {
      const wrong = st.current.packages.filter((p) => p.tree && r.trees?.[`${p.name}@${p.version}`] !== p.tree);
      if (wrong.length)
        r = {
          ...r,
          state: 'failed',
          failureType: 'TAMPERED',
          error: `attested trees do not match the signed ones: ${wrong
            .map((p) => `${p.name}@${p.version} ${r.trees?.[`${p.name}@${p.version}`] ?? 'not attested'}`)
            .join(', ')}`,
        };
    }
    const t = st.targets.get(deviceId)!;
    const maxAttempts = Number(st.current.params.maxAttempts ?? 3);
    const step = agentStep(t, r.state, maxAttempts);
    const at = new Date().toISOString();
    const base = { type: 'target' as const, at, deviceId, commandId: st.current.commandId };
    // Written now and fsync'd with the other reports of this turn: the route answers after synced().
    if (step.kind === 'move')
      this.jobs.record(
        st.jobId,
        [
          {
            ...base,
            state: step.state,
            attempt: t.attempt,
            ...(step.state === 'installed' && r.trees ? { trees: r.trees } : {}),
          },
        ],
        true,
      );
    if (step.kind === 'fail') {
      const failureType = r.failureType ?? 'INSTALL_FAILED';
      const failed = { ...base, state: 'failed' as const, attempt: t.attempt, failureType, error: r.error };
      // The failed attempt and the next offer go to disk together.
      const retry = step.retry ? [{ ...base, state: 'pending' as const, attempt: t.attempt + 1 }] : [];
      if (this.jobs.record(st.jobId, [failed, ...retry], true) && step.retry) this.offered(deviceId);
      if (!step.retry)
        this.reporter.alert({
          source: this.relayId,
          alertId: `${st.jobId}/${st.current.commandId}/${deviceId}/failed`,
          deviceId,
          jobId: st.jobId,
          relayId: this.relayId,
          failureType,
          message: `after ${t.attempt} attempt(s): ${r.error ?? 'failed'}`,
        });
    }
    return { ok: true };
  }
}
