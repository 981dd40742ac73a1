// The migration that made device_packages and device_seen fills them from every target and
// verification already stored, with the same rules as reports arriving (device-packages.ts).
import type { Kysely } from 'kysely';
import {
  applyTarget,
  applyVerification,
  type JobInfo,
  jobInfo,
  later,
  type Row,
  save,
  type TargetChange,
  type VerificationChange,
} from './device-packages.ts';
import type { Database } from './schema.ts';
import { oneOf } from './together.ts';

type Db = Kysely<Database>;

/** Builds both tables from every target and verification (the migration that made them), by devices a chunk at a time. */
export async function rebuildDevicePackages(db: Db, chunk = 20_000) {
  const jobs = await jobInfo(
    db,
    (await db.selectFrom('jobs').select('id').execute()).map((j) => j.id),
  );
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
  // Targets and verifications in one time order, as the view folded them; targets first at a tie.
  const events: { at: string; order: number; device: string; t?: TargetChange; v?: VerificationChange }[] = [
    ...targets.map((t) => ({ at: t.updated_at, order: 0, device: t.device_id, t })),
    ...verifications.map((v) => ({ at: v.at, order: 1, device: v.device_id, v })),
  ].sort((a, b) => a.at.localeCompare(b.at) || a.order - b.order);
  const byDevice = new Map<string, Map<string, Row>>();
  const changed = new Map<string, Set<string>>();
  const seen = new Map<string, string>();
  for (const { at, device, t, v } of events) {
    const rows = byDevice.get(device) ?? new Map<string, Row>();
    byDevice.set(device, rows);
    const names = changed.get(device) ?? new Set<string>();
    later(seen, device, at);
    const job = t && jobs.get(t.job_id);
    if (t && job) applyTarget(rows, t, job, names);
    if (v) applyVerification(rows, v, names);
    if (names.size) changed.set(device, names);
  }
  await save(db, byDevice, changed, seen);
}
