// Step 6's counts kept as they grow, not counted again for each alert: the recent counted alert
// times of each device and failure type stay in memory, so the track step costs the same however
// many alerts pile up. The database stays the truth: a late alert outside what is held, a batch that
// rolls back, or another master's insert (seen as a new highest alert id) sends it back there.
import type { Transaction } from 'kysely';
import type { Database } from '../store/index.ts';
import { countedTimes, countInWindow, fullestWindow, NEIGHBOURS } from './tracking.ts';

type Tx = Transaction<Database>;

interface Held {
  /** Every counted alert of the key stamped at or after `from` is in `times` (sorted). */
  from: number;
  times: number[];
}

/** Keys held at most (least recently used go first), and times per key. */
const MAX_KEYS = 50_000;
const MAX_TIMES = 4 * NEIGHBOURS;

export class TrackWindows {
  private held = new Map<string, Held>();
  private lastId = -1;

  constructor(private readonly windowMs: number) {}

  /** At the start of each batch, given the highest alert id: anything inserted by someone else empties what is held. */
  begin(top: number) {
    if (top !== this.lastId) this.held.clear();
    this.lastId = top;
  }

  /** A batch that did not commit may have added times that are not stored. */
  forget() {
    this.held.clear();
    this.lastId = -1;
  }

  /** Our own rows are written: the highest id is ours, not someone else's. */
  written(topId: number) {
    this.lastId = topId;
  }

  /** A counted alert of ours (written with the batch): its time joins its key. */
  counted(deviceId: string, failureType: string, at: string) {
    const h = this.held.get(`${deviceId}\0${failureType}`);
    const t = Date.parse(at);
    if (!h || t < h.from) return;
    h.times.splice(upperBound(h.times, t), 0, t);
    // Trimmed back to the newest MAX_TIMES (and none stamped with the oldest kept, which starts what
    // is whole) only once a quarter more has come: a key that floods is not copied at every alert.
    if (h.times.length > MAX_TIMES + MAX_TIMES / 4) {
      const oldest = h.times[h.times.length - MAX_TIMES];
      h.from = oldest + 1;
      h.times.splice(0, upperBound(h.times, oldest));
    }
  }

  /** `beforeRead` writes the batch's queued rows when the database must answer. */
  async count(tx: Tx, deviceId: string, failureType: string, at: string, beforeRead: () => Promise<void>) {
    const key = `${deviceId}\0${failureType}`;
    const t = Date.parse(at);
    let h = this.held.get(key);
    if (!h) {
      // Held from two windows back: late alerts within a window of the newest are served too.
      const from = t - 2 * this.windowMs;
      const rows = await countedTimes(tx, deviceId, failureType)
        .where('at', '>=', new Date(from).toISOString())
        .orderBy('at', 'desc')
        .limit(MAX_TIMES)
        .execute();
      const times = rows.map((r) => Date.parse(r.at)).reverse();
      h = {
        from: rows.length === MAX_TIMES ? times[0] + 1 : from,
        times: times.filter((x) => rows.length < MAX_TIMES || x > times[0]),
      };
      if (this.held.size >= MAX_KEYS) this.held.delete(this.held.keys().next().value!);
    } else this.held.delete(key);
    this.held.set(key, h);

    const lo = lowerBound(h.times, t - this.windowMs + 1);
    const self = upperBound(h.times, t);
    // Served from memory when it holds the whole window before the alert, or the neighbours the
    // database query would have read; otherwise the database answers.
    if (t - this.windowMs < h.from && self - lo < NEIGHBOURS) {
      await beforeRead();
      return countInWindow(tx, deviceId, failureType, at, this.windowMs);
    }
    const hi = lowerBound(h.times, t + this.windowMs);
    // Nothing later in its window (the usual case: alerts come in order): the window ending at this
    // alert is the fullest, with as many before it as the database would read.
    if (hi === self) return Math.min(self - lo, NEIGHBOURS) + 1;
    const before = h.times.slice(Math.max(lo, self - NEIGHBOURS), self);
    const after = h.times.slice(self, Math.min(hi, self + NEIGHBOURS));
    return fullestWindow(before, t, after, this.windowMs);
  }
}

/** First index whose time is ≥ t. */
function lowerBound(xs: number[], t: number) {
  let lo = 0;
  let hi = xs.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (xs[mid] < t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** First index whose time is > t. */
const upperBound = (xs: number[], t: number) => lowerBound(xs, t + 1);
