// Step 6, track: how many alerts of this device and type fall in one window with this one, by the
// alerts' own times, whatever order they arrived in. A late alert stamped between two others counts
// with both; the count is the fullest window that holds it.
import type { Transaction } from 'kysely';
import type { Database } from '../store/index.ts';

/** Neighbours read on each side: bounds the work per alert however many pile up. */
export const NEIGHBOURS = 1000;

/** The times of a device's counted alerts of one failure type (a query to narrow further). */
export const countedTimes = (tx: Transaction<Database>, deviceId: string, failureType: string) =>
  tx
    .selectFrom('alerts')
    .select('at')
    .where('device_id', '=', deviceId)
    .where('failure_type', '=', failureType)
    .where('counted', '=', 1);

export async function countInWindow(
  tx: Transaction<Database>,
  deviceId: string,
  failureType: string,
  at: string,
  windowMs: number,
) {
  const t = Date.parse(at);
  const base = countedTimes(tx, deviceId, failureType);
  const [before, after] = await Promise.all([
    base
      .where('at', '>', new Date(t - windowMs).toISOString())
      .where('at', '<=', at)
      .orderBy('at', 'desc')
      .limit(NEIGHBOURS)
      .execute(),
    base
      .where('at', '>', at)
      .where('at', '<', new Date(t + windowMs).toISOString())
      .orderBy('at', 'asc')
      .limit(NEIGHBOURS)
      .execute(),
  ]);
  return fullestWindow(
    before.map((r) => Date.parse(r.at)).reverse(),
    t,
    after.map((r) => Date.parse(r.at)),
    windowMs,
  );
}

/** The most alerts one window holds with the alert at `t`, given its neighbours before and after (ascending). */
export function fullestWindow(before: number[], t: number, after: number[], windowMs: number) {
  const times = [...before, t, ...after];
  const self = before.length;
  // Two pointers: for each window start at or before this alert, the furthest end still inside it.
  let best = 1;
  let end = self;
  for (let start = 0; start <= self; start++) {
    while (end + 1 < times.length && times[end + 1] - times[start] < windowMs) end++;
    if (times[self] - times[start] < windowMs) best = Math.max(best, end - start + 1);
  }
  return best;
}
