// The one rule for when a distribution has ended, used by relays (per command) and the master (per job).
export type EndState = 'complete' | 'failed';

/** Every target installed → complete; every target ended and one failed → failed; else still running. */
export function jobEnd(states: Iterable<string>): EndState | undefined {
  let n = 0;
  let failed = false;
  for (const s of states) {
    n++;
    if (s === 'failed') failed = true;
    else if (s !== 'installed') return undefined;
  }
  if (!n) return undefined;
  return failed ? 'failed' : 'complete';
}
