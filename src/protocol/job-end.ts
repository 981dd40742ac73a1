// The one rule for when a distribution has ended, used by relays (per command, from their tally) and
// the master (per job and relay, counted by the database).
export type EndState = 'complete' | 'failed';

/** A distribution's targets: how many, how many ended (installed or failed), how many failed. */
export interface TargetCounts {
  targets: number;
  ended: number;
  failed: number;
}

/** Every target installed → complete; every target ended and one failed → failed; else still running. */
export function jobEnd({ targets, ended, failed }: TargetCounts): EndState | undefined {
  if (!targets || ended < targets) return undefined;
  return failed ? 'failed' : 'complete';
}
