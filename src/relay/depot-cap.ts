// Keeps a relay's depot under its cap (DESIGN §17): run after content arrives, one pass at a time.
import { join } from 'node:path';
import type { Logger } from '../common/log.ts';
import { evictPastCap } from './eviction.ts';
import type { RelayJobs } from './jobs.ts';

export function depotCap(dataDir: string, maxBytes: () => number | undefined, jobs: RelayJobs, log: Logger) {
  let pass: Promise<void> = Promise.resolve();
  return () => {
    pass = pass.then(async () => {
      const cap = maxBytes();
      if (!cap) return;
      // Open jobs (not complete) keep their content: a failed one may be redistributed from it.
      const needed = new Set(
        jobs
          .summaries()
          .filter((s) => s.phase !== 'complete')
          .flatMap((s) => s.packages.map((p) => p.digest)),
      );
      const r = await evictPastCap(join(dataDir, 'depot'), cap, needed).catch((err) => {
        log.warn({ err: (err as Error).message }, 'depot eviction failed');
        return undefined;
      });
      if (r?.removed.length)
        log.info({ removed: r.removed, bytes: r.bytes, kept: r.kept }, 'depot over its cap: evicted');
      if (r && r.kept > cap) log.warn({ kept: r.kept, cap }, 'depot over its cap with content open jobs need');
    });
    return pass;
  };
}
