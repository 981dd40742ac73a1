// Cancelling a job at its relays: a `cancel` command to each, delivered like any command (by
// acknowledgement); a relay fails the targets still open as CANCELLED.
import { newId } from '../protocol/crypto.ts';
import type { Db } from '../store/index.ts';

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
      const body = {
        commandId,
        jobId,
        relayId: relay_id,
        kind: 'cancel',
        packages: [],
        distributionList: [],
        params: {},
        issuedAt: now,
        issuedBy: by,
      };
      await db
        .insertInto('commands')
        .values({
          command_id: commandId,
          job_id: jobId,
          relay_id,
          kind: 'cancel',
          body: JSON.stringify(body),
          issued_at: now,
          acked_at: null,
        })
        .execute();
    }
    if (relays.length) await notify(relays.map((r) => r.relay_id).join(','));
  };
}
