// Endpoints heard of through their relays: a relay passes on when its endpoints last asked it for
// work, so the fleet view's "last seen" is an endpoint's last poll, not only its last install step.
import { type Db, noteSeen } from '../store/index.ts';
import type { Enrollments } from './enrollment.ts';

/**
 * Keeps what `relayId` says of the devices it serves (those its enrollment names), and nothing of
 * others. The times are the relay's clock: read against the master's through `sentAt` (the relay's
 * clock as it sent them), so a relay whose clock runs an hour behind does not show its endpoints as
 * gone for an hour.
 */
export async function endpointsSeen(
  db: Db,
  enrollments: Pick<Enrollments, 'served'>,
  relayId: string,
  seen: { deviceId: string; at: string }[],
  sentAt?: string,
) {
  if (!seen.length) return;
  const now = Date.now();
  const sent = sentAt ? Date.parse(sentAt) : Number.NaN;
  const skew = Number.isFinite(sent) ? now - sent : 0;
  const served = await enrollments.served(relayId);
  const at = new Map<string, string>();
  for (const s of seen) {
    const t = Date.parse(s.at) + skew;
    // Whatever the relay says, no device is seen later than now.
    if (served.has(s.deviceId) && Number.isFinite(t)) at.set(s.deviceId, new Date(Math.min(t, now)).toISOString());
  }
  await noteSeen(db, at);
}
