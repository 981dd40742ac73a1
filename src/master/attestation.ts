// Attestation at the master (DESIGN §17): a target counts as installed only with the signed trees attested.
import type { Transaction } from 'kysely';
import type { PackageRef, TargetReport } from '../protocol/types.ts';
import type { Database } from '../store/index.ts';

/** A job's packages as its signed command names them, read once per job for a whole report. */
export function jobPackages(tx: Transaction<Database>) {
  const read = new Map<string, Promise<PackageRef[]>>();
  return (jobId: string) => {
    let p = read.get(jobId);
    if (!p) {
      p = tx
        .selectFrom('jobs')
        .select('packages')
        .where('id', '=', jobId)
        .executeTakeFirst()
        .then((job) => (job ? JSON.parse(job.packages) : []));
      read.set(jobId, p);
    }
    return p;
  };
}

/** Why a report of `installed` does not stand: a package whose signed tree the endpoint did not attest. */
export async function wrongTrees(packagesOf: (jobId: string) => Promise<PackageRef[]>, t: TargetReport) {
  const packages = await packagesOf(t.jobId);
  const wrong = packages.filter((p) => p.tree && t.trees?.[`${p.name}@${p.version}`] !== p.tree);
  if (!wrong.length) return undefined;
  return `the endpoint reported installed, but attested ${wrong
    .map((p) => `${p.name}@${p.version} as ${t.trees?.[`${p.name}@${p.version}`] ?? 'nothing'} (signed ${p.tree})`)
    .join(', ')}`;
}
