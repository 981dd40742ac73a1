// Endpoints heard of through their relays: a relay passes on when its endpoints last asked it for
// work, so the fleet view's "last seen" is an endpoint's last poll, not only its last install step.
import { type Db, noteSeen, oneOf, perStatement } from '../store/index.ts';
import { servedBy } from './failover.ts';

/**
 * Keeps what `relayId` says of the devices it serves, and nothing of others. The times are the
 * relay's clock: read against the master's through `sentAt` (the relay's clock as it sent them), so
 * a relay whose clock runs an hour behind does not show its endpoints as gone for an hour.
 */
export async function endpointsSeen(
  db: Db,
  relayId: string,
  seen: { deviceId: string; at: string }[],
  sentAt?: string,
) {
  if (!seen.length) return;
  const now = Date.now();
  const sent = sentAt ? Date.parse(sentAt) : Number.NaN;
  const skew = Number.isFinite(sent) ? now - sent : 0;
  const at = new Map<string, string>();
  for (const s of seen) {
    const t = Date.parse(s.at) + skew;
    // Whatever the relay says, no device is seen later than now.
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
