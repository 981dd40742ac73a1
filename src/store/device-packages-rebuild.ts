// The migration that made device_packages and device_seen fills them from every target and
// verification already stored, with the same rules as reports arriving (device-packages.ts).
import type { Kysely } from 'kysely';
import { fold, type JobInfo, jobInfo, targetChanges, verificationChanges } from './device-packages.ts';
import type { Database } from './schema.ts';
import { oneOf } from './together.ts';

type Db = Kysely<Database>;

/** Builds both tables from every target and verification, by devices a chunk at a time. */
export async function rebuildDevicePackages(db: Db, chunk = 20_000) {
  const jobs = await jobInfo(db);
  for (let after = ''; ; ) {
    const devices = (
      await db.selectFrom('devices').select('id').where('id', '>', after).orderBy('id').limit(chunk).execute()
    ).map((d) => d.id);
    if (!devices.length) return;
    after = devices.at(-1)!;
    await rebuildDevices(db, devices, jobs);
  }
}

async function rebuildDevices(db: Db, devices: string[], jobs: Map<string, JobInfo>) {
  const targets = await db
    .selectFrom('targets')
    .select(['job_id', 'device_id', 'state', 'failure_type', 'updated_at', 'attestation'])
    .where(oneOf(db, 'device_id', devices))
    .where('state', '!=', 'pending')
    .execute();
  const verifications = await db
    .selectFrom('verifications')
    .select(['device_id', 'package', 'version', 'state', 'at'])
    .where(oneOf(db, 'device_id', devices))
    .execute();
  await fold(db, new Map(), jobs, [...targetChanges(targets), ...verificationChanges(verifications)]);
}
