// The agent protocol on a relay (DESIGN §5): what an endpoint should do now, and its reports.
import { EventEmitter } from 'node:events';
import { authorityOf } from '../protocol/command.ts';
import type { FailureType } from '../protocol/failure-types.ts';
import { ListTree } from '../protocol/signing.ts';
import type { Assignment, DistributionCommand, SignedHeader, TargetState } from '../protocol/types.ts';
import { mayContain } from './device-filter.ts';
import type { RelayJobs } from './jobs.ts';
import { Polls } from './polls.ts';
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

/** The steps an endpoint reports before it changes anything on its disk. */
const BEFORE_INSTALL = new Set<TargetState>(['downloading', 'waiting_window', 'installing']);

export class AgentChannel {
  /** `assign:<deviceId>` when that device has something new to do. */
  readonly events = new EventEmitter().setMaxListeners(0);
  /** When each endpoint last asked for work, passed on to the master (polls.ts). */
  readonly polls: Polls;
  // Per command object, for as long as its job holds it.
  private readonly sharedParts = new WeakMap<DistributionCommand, { authority: SignedHeader; json: string }>();

  constructor(
    private readonly relayId: string,
    private readonly jobs: RelayJobs,
    private readonly reporter: Reporter,
  ) {
    this.polls = new Polls(reporter);
    // Targets the relay itself ended (cancel, deadline…) withdraw their assignments: the endpoints
    // may be holding them, waiting for a window, and hear of it at once.
    jobs.events.on('withdrawn', (deviceId: string) => this.offered(deviceId));
  }

  offered(deviceId: string) {
    this.events.emit(`assign:${deviceId}`);
  }

  /** Resolves once the device is offered something, after `ms`, or when its long-poll closes. */
  nextOffer(deviceId: string, ms: number, poll: Pick<EventEmitter, 'on' | 'off'>) {
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.events.off(`assign:${deviceId}`, done);
        poll.off('close', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.events.on(`assign:${deviceId}`, done);
      poll.on('close', done);
    });
  }

  /**
   * Each assignment the device has now, by id, as JSON: every job where it is a target of the command
   * in force that has not ended. What a command's targets share is serialized once (at 10,000 waiting
   * endpoints, serializing it for each answer was a sixth of the relay's work in the burst).
   */
  assignmentsJson(deviceId: string): { id: string; json: string }[] {
    const out: { id: string; json: string }[] = [];
    for (const st of this.jobs.open()) {
      if (st.phase !== 'distributing' || !st.tally.members.has(deviceId)) continue;
      const t = st.targets.get(deviceId)!;
      if (ended(t.state)) continue;
      const shared = this.shared(st);
      // Without the master's signature there is nothing an agent may install.
      if (!shared) continue;
      const own: Pick<Assignment, 'assignmentId' | 'attempt' | 'proof'> = {
        assignmentId: `${st.current.commandId}/${deviceId}/${t.attempt}`,
        attempt: t.attempt,
        proof: this.proof(st, shared.authority.header.commandId, deviceId),
      };
      out.push({ id: own.assignmentId, json: `${JSON.stringify(own).slice(0, -1)},${shared.json.slice(1)}` });
    }
    return out;
  }

  private shared(st: JobState) {
    const c = st.current;
    let s = this.sharedParts.get(c);
    if (!s) {
      const authority = authorityOf(c);
      if (!authority) return undefined;
      const part: Omit<Assignment, 'assignmentId' | 'attempt' | 'proof'> = {
        jobId: st.jobId,
        commandId: c.commandId,
        kind: c.kind,
        packages: c.packages,
        params: c.params,
        authority,
      };
      s = { authority, json: JSON.stringify(part) };
      this.sharedParts.set(c, s);
    }
    return s;
  }

  /** The device's proof in the list the authority signed: the original command's list. */
  private proof(st: JobState, commandId: string, deviceId: string): string[] {
    const list = st.original.commandId === commandId ? st.original.distributionList : st.current.distributionList;
    return ListTree.of(list).proof(deviceId) ?? [];
  }

  /** Resolves once the reports taken so far are on disk. */
  synced() {
    return this.jobs.synced();
  }

  /**
   * An agent's report about its own target; refused (with why) for anything it was not given, and
   * answered `cancelled` for a step toward an install its cancelled target no longer wants.
   */
  report(deviceId: string, r: AgentReport): { ok: true } | { ok: false; reason: string } | { cancelled: string } {
    // An ended job changes only when an endpoint it failed has installed after all, and answers only
    // a cancelled target's next step: any other report would be ignored, so it is, without reading
    // the job back from its log.
    const s = this.jobs.endedSummary(r.jobId);
    const toward = BEFORE_INSTALL.has(r.state) && s?.failure?.failureType === 'CANCELLED';
    if (s && ((r.state !== 'installed' && !toward) || !s.failedFilter || !mayContain(s.failedFilter, deviceId)))
      return { ok: true };
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
    // Cancelled before it installed (waiting for its window, say): the endpoint stops there.
    if (BEFORE_INSTALL.has(r.state) && t.state === 'failed' && t.failureType === 'CANCELLED')
      return { cancelled: t.error ?? 'the job was cancelled' };
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
