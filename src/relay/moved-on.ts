// Targets of a failed job that a later job of this relay moved on: it installed a newer version of
// one of the failed job's packages there, and nothing after it removed that package. The endpoint
// would refuse the older version (DOWNGRADE_REFUSED), so a plan leaves them out and says why.
import { compareVersions } from '../protocol/versions.ts';
import { mayContain } from './device-filter.ts';
import type { JobSummary } from './job-summary.ts';
import type { JobState } from './state.ts';

/** The relay's own finding, then the master's record for the targets it did not find moved on. */
export function withFleet(here: Map<string, string>, missing: readonly string[], fleet: ReadonlyMap<string, string>) {
  for (const d of missing) if (!here.has(d) && fleet.has(d)) here.set(d, fleet.get(d)!);
  return here;
}

/**
 * For each of `missing` moved on, why. `jobs` are the relay's jobs in order (those after the failed
 * one count); `read` gives a job whole (read back from its log when it has ended).
 */
export function movedOnTargets(
  st: JobState,
  missing: readonly string[],
  jobs: readonly JobSummary[],
  read: (jobId: string) => JobState | undefined,
): Map<string, string> {
  const out = new Map<string, string>();
  const later = jobs.slice(jobs.findIndex((k) => k.jobId === st.jobId) + 1);
  // A rollback may go down, and an uninstall installs nothing: neither is refused for a newer version.
  if (st.current.params.allowDowngrade === true || st.current.params.uninstall) return out;
  const mine = new Map(st.current.packages.map((p) => [p.name, p.version]));
  // Newest first; an uninstall job names no packages, so it is read to see what it removes.
  const touching = later.filter((k) => !k.packages.length || k.packages.some((p) => mine.has(p.name))).reverse();
  if (!touching.length) return out;
  const whole = new Map<string, JobState | undefined>();
  const job = (id: string) => {
    if (!whole.has(id)) {
      // A later job whose log is gone (deleted by hand) tells nothing; the master's record may still.
      let st: JobState | undefined;
      try {
        st = read(id);
      } catch {}
      whole.set(id, st);
    }
    return whole.get(id);
  };
  for (const d of missing) {
    for (const [name, version] of mine) {
      // The newest later job that installed or removed this package at this endpoint decides.
      for (const k of touching) {
        if (k.installedFilter && !mayContain(k.installedFilter, d)) continue;
        const ks = job(k.jobId);
        if (ks?.targets.get(d)?.state !== 'installed') continue;
        const theirs = ks.current.packages.find((p) => p.name === name);
        if (!theirs && ks.current.params.uninstall !== name) continue;
        if (theirs && compareVersions(theirs.version, version) > 0)
          out.set(d, `job ${k.jobId} installed ${name}@${theirs.version} there since`);
        break;
      }
      if (out.has(d)) break;
    }
  }
  return out;
}
