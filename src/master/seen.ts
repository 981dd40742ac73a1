// Endpoints heard of through their relays: a relay passes on when its endpoints last asked it for
// work, so the fleet view's "last seen" is an endpoint's last poll, not only its last install step.
import { type Db, noteSeen, oneOf, perStatement } from '../store/index.ts';
import { servedBy } from './failover.ts';

/** Keeps what `relayId` says of the devices it serves, and nothing of others. */
export async function endpointsSeen(db: Db, relayId: string, seen: { deviceId: string; at: string }[]) {
  if (!seen.length) return;
  // A relay's clock may run ahead: no device is seen later than now.
  const now = Date.now();
  const at = new Map<string, string>();
  for (const s of seen) {
    const t = Date.parse(s.at);
    if (Number.isFinite(t)) at.set(s.deviceId, new Date(Math.min(t, now)).toISOString());
  }
  const served = new Map<string, string>();
  for (const part of perStatement([...at.keys()], 5000))
    for (const { id } of await db
      .selectFrom('devices')
      .select('id')
      .where(oneOf(db, 'id', part))
      .where(servedBy(relayId))
      .execute())
      served.set(id, at.get(id)!);
  await noteSeen(db, served);
}
