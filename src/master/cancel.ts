// Cancelling a job at its relays: a `cancel` command to each, delivered like any command (by
// acknowledgement); a relay fails the targets still open as CANCELLED.
import { newId } from '../protocol/crypto.ts';
import type { Db } from '../store/index.ts';
import { queueCommand } from './commands.ts';

export function jobCanceller(db: Db, notify: (relayIds: string) => Promise<void>, by: string) {
  return async (jobId: string) => {
    const relays = await db
      .selectFrom('commands')
      .select('relay_id')
      .distinct()
      .where('job_id', '=', jobId)
      .where('kind', '=', 'distribute')
      .execute();
    const now = new Date().toISOString();
    for (const { relay_id } of relays) {
      const commandId = newId('c');
      await queueCommand(db, {
        commandId,
        jobId,
        relayId: relay_id,
        kind: 'cancel',
        packages: [],
        distributionList: [],
        params: {},
        issuedAt: now,
        issuedBy: by,
      });
    }
    if (relays.length) await notify(relays.map((r) => r.relay_id).join(','));
  };
}
