// What a relay's redistributor asks of its master (DESIGN §7), and what it knows without one.

import { z } from 'zod';
import type { Client } from '../protocol/client.ts';
import { FanoutError } from '../protocol/errors.ts';
import type { SignedHeader } from '../protocol/types.ts';
import type { MasterEnrollment } from './enroll.ts';
import { needsRedistribution } from './plan.ts';
import type { JobState } from './state.ts';

/** What the relay asks of its master for plans; when the master is away, what it knows alone (`offline`). */
export interface MasterForPlans {
  /** Jobs with open failed-distribution records for this relay at the master. */
  openFailed(): Promise<string[]>;
  /** Of a failed job's targets here not installed, those the master's fleet record has on a newer version, and why. */
  movedOn(jobId: string): Promise<Map<string, string>>;
  /** The master's fresh signature for a command whose own has expired. */
  renew(commandId: string): Promise<SignedHeader>;
  /** Whether the master signed this with its latest key known here. */
  byLatestKey(signed: SignedHeader): boolean;
}

export const offline: MasterForPlans = {
  openFailed: async () => [],
  movedOn: async () => new Map(),
  renew: async (id) => {
    throw new FanoutError('FANOUT_ERR_PLAN_STATE', {
      planId: id,
      why: 'its original command has expired and the master cannot be asked to sign it again from here; start the relay and approve it there',
    });
  },
  byLatestKey: () => true,
};

/** What the redistributor asks of the master (a renewed signature is checked before it is used). */
export function masterForPlans(master: Client, enrollment: MasterEnrollment): MasterForPlans {
  return {
    openFailed: async () =>
      (await master.get<{ jobId: string }[]>('api/v1/relay/failed', { timeoutMs: 5000 })).map((f) => f.jobId),
    movedOn: async (jobId) => {
      const path = `api/v1/relay/jobs/${encodeURIComponent(jobId)}/moved-on`;
      const answer = MovedOn.parse(await master.get(path, { timeoutMs: 5000 }));
      return new Map(answer.map((m) => [m.deviceId, m.why]));
    },
    renew: async (commandId) => {
      const path = `api/v1/relay/commands/${encodeURIComponent(commandId)}/renew`;
      const fresh = await master.post<SignedHeader>(path, undefined, { timeoutMs: 10_000 });
      if (!(await enrollment.verifies(fresh))) throw new Error('the renewed command does not verify');
      return fresh;
    },
    byLatestKey: (signed) => enrollment.signedByLatest(signed),
  };
}
const MovedOn = z.array(z.object({ deviceId: z.string(), why: z.string().max(2000) })).max(1_000_000);

/**
 * For each failed job planned in one round, the targets the master's record has on a newer version.
 * The master's record, while it answers: after one failed ask, the rest are planned from the log alone.
 */
export function fleetMovedOn(master: MasterForPlans) {
  let away = false;
  return async (st: JobState) => {
    const downOrRemove = st.current.params.allowDowngrade === true || !!st.current.params.uninstall;
    if (away || downOrRemove || !needsRedistribution(st)) return new Map<string, string>();
    return master.movedOn(st.jobId).catch(() => {
      away = true;
      return new Map<string, string>();
    });
  };
}
