// Re-verification on a relay (DESIGN §17): the master asks for it (`fanout device verify`), the relay
// hands the request to its endpoints with their next poll, and passes their answers on. A version
// that drifted is a DRIFT alert, and its target is no longer installed in the job that put it
// there, so a redistribution plan reinstalls it from the depot.
import type { AgentChannel } from './agent-channel.ts';
import { mayContain } from './device-filter.ts';
import { ended } from './job-summary.ts';
import type { RelayJobs } from './jobs.ts';
import type { Reporter } from './reporter.ts';

export interface AgentVerification {
  package: string;
  version: string;
  state: 'ok' | 'drift' | 'missing';
  tree?: string;
  detail?: string;
}

export class Verifications {
  /** deviceId → the request it has not answered yet. */
  private readonly wanted = new Map<string, string>();

  constructor(
    private readonly relayId: string,
    private readonly jobs: RelayJobs,
    private readonly reporter: Reporter,
    private readonly agents: AgentChannel,
  ) {}

  /** Asks endpoints to verify now: their long-polls are woken with the request. */
  request(requestId: string, devices: string[]) {
    for (const d of devices) {
      this.wanted.set(d, requestId);
      this.agents.offered(d);
    }
  }

  wantedBy(deviceId: string) {
    return this.wanted.get(deviceId);
  }

  answer(deviceId: string, requestId: string | undefined, results: AgentVerification[]) {
    const at = new Date().toISOString();
    if (requestId && this.wanted.get(deviceId) === requestId) this.wanted.delete(deviceId);
    // An endpoint with nothing installed answers too: the master hears that it was asked and is fine.
    if (requestId && !results.length)
      this.reporter.verification({
        deviceId,
        requestId,
        package: '',
        version: '',
        state: 'ok',
        detail: 'nothing installed',
        at,
      });
    for (const r of results) {
      this.reporter.verification({ deviceId, ...(requestId ? { requestId } : {}), ...r, at });
      if (r.state === 'ok') continue;
      const jobId = this.reopen(deviceId, r, at);
      this.reporter.alert({
        source: this.relayId,
        // The same drift seen again is the same alert; a further change is a new one.
        alertId: `${deviceId}/drift/${r.package}@${r.version}/${r.tree ?? r.state}`,
        deviceId,
        ...(jobId ? { jobId, relayId: this.relayId } : {}),
        failureType: 'DRIFT',
        message: r.detail ?? `${r.package}@${r.version} is ${r.state}`,
        at,
      });
    }
  }

  /** The latest job that installed this version on the device: its target is drifted, not installed. */
  private reopen(deviceId: string, r: AgentVerification, at: string) {
    const st = this.installedBy(deviceId, r);
    if (!st) return undefined;
    const t = st.targets.get(deviceId)!;
    this.jobs.record(st.jobId, [
      {
        type: 'target',
        at,
        deviceId,
        commandId: st.current.commandId,
        state: 'failed',
        attempt: t.attempt,
        failureType: 'DRIFT',
        error: r.detail ?? `${r.package}@${r.version} is ${r.state}`,
      },
    ]);
    return st.jobId;
  }

  /**
   * Jobs of that version, latest first, read back whole only until the one that installed it; an
   * ended job whose filter rules the device out is not read back at all.
   */
  private installedBy(deviceId: string, r: AgentVerification) {
    const of = this.jobs
      .summaries()
      .filter(
        (s) =>
          s.packages.some((p) => p.name === r.package && p.version === r.version) &&
          (!ended(s.phase) || (s.installedFilter !== undefined && mayContain(s.installedFilter, deviceId))),
      );
    for (let i = of.length - 1; i >= 0; i--) {
      const st = this.jobs.get(of[i].jobId);
      if (st?.targets.get(deviceId)?.state === 'installed' && st.tally.members.has(deviceId)) return st;
    }
    return undefined;
  }
}
