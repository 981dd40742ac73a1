// Endpoints that turn to a fallback relay (DESIGN §13; what a relay is told of its devices is in
// enrollment.ts). The relay they now use tells the master, which moves their open targets there:
// the target's relay changes (the job view shows who served it) and the relay gets a command,
// signed as any, for every open target of that job it now serves.

import { DEFAULT_EXPIRY_MS, signCommand } from '../protocol/command.ts';
import { newId } from '../protocol/crypto.ts';
import { FanoutError } from '../protocol/errors.ts';
import { DistributionCommand } from '../protocol/types.ts';
import type { Db } from '../store/index.ts';
import { queueCommand } from './commands.ts';

export const fallbacksOf = (json: string | null): string[] => (json ? (JSON.parse(json) as string[]) : []);

export async function adopt(db: Db, signingKey: string, relayId: string, deviceId: string) {
  const dev = await db
    .selectFrom('devices')
    .select(['fallback_relays', 'relay'])
    .where('id', '=', deviceId)
    .executeTakeFirst();
  // Its own relay takes back what a fallback held (the endpoint came home); a fallback, what any held.
  if (!dev || (dev.relay !== relayId && !fallbacksOf(dev.fallback_relays).includes(relayId)))
    throw new FanoutError('FANOUT_ERR_AUTH_FORBIDDEN', {
      needs: `${deviceId} to be served by ${relayId} or to name it among its fallback relays`,
    });
  const open = await db
    .selectFrom('targets')
    .select(['job_id'])
    .where('device_id', '=', deviceId)
    .where('relay_id', '!=', relayId)
    .where('state', 'not in', ['installed', 'failed'])
    .execute();
  const moved: string[] = [];
  const now = new Date().toISOString();
  for (const { job_id } of open) {
    await db.transaction().execute(async (tx) => {
      await tx
        .updateTable('targets')
        .set({ relay_id: relayId, updated_at: now })
        .where('job_id', '=', job_id)
        .where('device_id', '=', deviceId)
        .execute();
      const job = await tx.selectFrom('jobs').selectAll().where('id', '=', job_id).executeTakeFirstOrThrow();
      const list = (
        await tx
          .selectFrom('targets')
          .select('device_id')
          .where('job_id', '=', job_id)
          .where('relay_id', '=', relayId)
          .where('state', 'not in', ['installed', 'failed'])
          .orderBy('device_id')
          .execute()
      ).map((t) => t.device_id);
      const commandId = newId('c');
      const body = signCommand(
        signingKey,
        DistributionCommand.parse({
          commandId,
          seq: 0,
          jobId: job_id,
          relayId,
          kind: 'distribute',
          packages: JSON.parse(job.packages),
          distributionList: list,
          params: JSON.parse(job.params),
          issuedAt: now,
          issuedBy: 'master (failover)',
        }),
        new Date(Date.now() + DEFAULT_EXPIRY_MS).toISOString(),
      );
      await queueCommand(tx, body);
    });
    moved.push(job_id);
  }
  return { deviceId, relayId, jobs: moved };
}
