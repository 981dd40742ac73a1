// Attestation at the master (DESIGN §17): a target counts as installed only with the signed trees attested.
import type { Transaction } from 'kysely';
import type { PackageRef, TargetReport } from '../protocol/types.ts';
import type { Database } from '../store/index.ts';

/** Why a report of `installed` does not stand: a package whose signed tree the endpoint did not attest. */
export async function wrongTrees(tx: Transaction<Database>, t: TargetReport) {
  const job = await tx.selectFrom('jobs').select('packages').where('id', '=', t.jobId).executeTakeFirst();
  const packages: PackageRef[] = job ? JSON.parse(job.packages) : [];
  const wrong = packages.filter((p) => p.tree && t.trees?.[`${p.name}@${p.version}`] !== p.tree);
  if (!wrong.length) return undefined;
  return `the endpoint reported installed, but attested ${wrong
    .map((p) => `${p.name}@${p.version} as ${t.trees?.[`${p.name}@${p.version}`] ?? 'nothing'} (signed ${p.tree})`)
    .join(', ')}`;
}
