// Cancelling a job at its relays: a `cancel` command to each, signed like any command (a relay obeys
// only what the master's key signed) and delivered by acknowledgement; a relay fails the targets
// still open as CANCELLED, naming who cancelled.
import { DEFAULT_EXPIRY_MS, signCommand } from '../protocol/command.ts';
import { newId } from '../protocol/crypto.ts';
import type { Db } from '../store/index.ts';
import { queueCommand } from './commands.ts';

export type CancelJob = (jobId: string, by: string) => Promise<void>;

export function jobCanceller(db: Db, notify: (relayIds: string) => Promise<void>, signingKey: () => string): CancelJob {
  return async (jobId, by) => {
    const relays = await db
      .selectFrom('commands')
      .select('relay_id')
      .distinct()
      .where('job_id', '=', jobId)
      .where('kind', '=', 'distribute')
      .execute();
    // Each relay's cancel names the job's targets there (or all, for a relay they moved away from):
    // a signed command carries its list.
    const targets = await db
      .selectFrom('targets')
      .select(['relay_id', 'device_id'])
      .where('job_id', '=', jobId)
      .orderBy('device_id')
      .execute();
    const byRelay = new Map<string, string[]>();
    for (const { relay_id } of relays) {
      const there = targets.filter((t) => t.relay_id === relay_id);
      byRelay.set(
        relay_id,
        (there.length ? there : targets).map((t) => t.device_id),
      );
    }
    const now = new Date();
    const expiresAt = new Date(now.getTime() + DEFAULT_EXPIRY_MS).toISOString();
    for (const [relay_id, list] of byRelay) {
      const body = signCommand(
        signingKey(),
        {
          commandId: newId('c'),
          seq: 0,
          jobId,
          relayId: relay_id,
          kind: 'cancel',
          packages: [],
          distributionList: list,
          params: {},
          issuedAt: now.toISOString(),
          issuedBy: by,
        },
        expiresAt,
      );
      await queueCommand(db, body);
    }
    if (byRelay.size) await notify([...byRelay.keys()].join(','));
  };
}
