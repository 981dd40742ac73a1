// What each device runs and when it was last heard of, kept as targets and verifications are
// written: the fleet view reads a page of it, where it used to fold every target ever written on
// each request (10 s and 1.7 GB at 100,000 endpoints × 10 jobs).
//
// The rules, applied in the order of each change's own time (a later word wins):
// - a target installed: the device runs the job's packages (attested when it sent its trees);
//   installed by an uninstall job: the package is gone (a `removed` row keeps the time);
// - a target failed as DRIFT or TAMPERED: those files are on its disk, whatever ran before;
//   any other failure counts only against the version the device is known to run;
// - a verification of the version it runs: attested again, or drifted.
import type { Kysely } from 'kysely';
import type { Database } from './schema.ts';
import { oneOf, perStatement } from './together.ts';

type Db = Kysely<Database>;

export interface TargetChange {
  job_id: string;
  device_id: string;
  state: string;
  failure_type: string | null;
  updated_at: string;
  attestation: string | null;
}
export interface VerificationChange {
  device_id: string;
  package: string;
  version: string;
  state: string;
  at: string;
}
export type Row = Database['device_packages'];
export type JobInfo = { packages: { name: string; version: string }[]; uninstall?: string };

const TROUBLE: Record<string, string> = { DRIFT: 'drift', TAMPERED: 'tampered' };

/** The device's packages after one target change (`rows` by package name, changed in place). */
export function applyTarget(rows: Map<string, Row>, t: TargetChange, job: JobInfo, changed: Set<string>) {
  const set = (r: Row) => {
    const was = rows.get(r.name);
    if (was && was.at > r.at) return; // a later word already stands
    rows.set(r.name, r);
    changed.add(r.name);
  };
  const base = { device_id: t.device_id, at: t.updated_at };
  if (t.state === 'installed' && job.uninstall)
    return set({ ...base, name: job.uninstall, version: rows.get(job.uninstall)?.version ?? '', state: 'removed' });
  for (const p of job.packages) {
    if (t.state === 'installed') set({ ...base, ...p, state: t.attestation ? 'attested' : 'installed' });
    else if (t.state === 'failed') {
      const trouble = TROUBLE[t.failure_type ?? ''];
      const runs = rows.get(p.name);
      if (trouble || (runs?.version === p.version && runs.state !== 'removed'))
        set({ ...base, ...p, state: trouble ?? 'failed' });
    }
  }
}

export function applyVerification(rows: Map<string, Row>, v: VerificationChange, changed: Set<string>) {
  const p = rows.get(v.package);
  if (!p || p.state === 'removed' || p.version !== v.version || v.at < p.at) return;
  rows.set(v.package, { ...p, state: v.state === 'ok' ? 'attested' : 'drift', at: v.at });
  changed.add(v.package);
}

async function currentRows(db: Db, devices: string[]) {
  const byDevice = new Map<string, Map<string, Row>>();
  for (const id of devices) byDevice.set(id, new Map());
  for (const part of perStatement(devices, 5000))
    for (const r of await db
      .selectFrom('device_packages')
      .selectAll()
      .where(oneOf(db, 'device_id', part))
      .execute())
      byDevice.get(r.device_id)?.set(r.name, r);
  return byDevice;
}

export async function save(
  db: Db,
  byDevice: Map<string, Map<string, Row>>,
  changed: Map<string, Set<string>>,
  seen: Map<string, string>,
) {
  const rows = [...changed].flatMap(([device, names]) => [...names].map((n) => byDevice.get(device)!.get(n)!));
  for (const part of perStatement(rows, 200))
    await db
      .insertInto('device_packages')
      .values(part)
      .onConflict((oc) =>
        oc
          .columns(['device_id', 'name'])
          .doUpdateSet((eb) => ({
            version: eb.ref('excluded.version'),
            state: eb.ref('excluded.state'),
            at: eb.ref('excluded.at'),
          }))
          .where('device_packages.at', '<=', (eb) => eb.ref('excluded.at')),
      )
      .execute();
  const times = [...seen].map(([device_id, at]) => ({ device_id, at }));
  for (const part of perStatement(times, 500))
    await db
      .insertInto('device_seen')
      .values(part)
      .onConflict((oc) =>
        oc
          .column('device_id')
          .doUpdateSet((eb) => ({ at: eb.ref('excluded.at') }))
          .where('device_seen.at', '<', (eb) => eb.ref('excluded.at')),
      )
      .execute();
}

export const later = (seen: Map<string, string>, device: string, at: string) => {
  const was = seen.get(device);
  if (!was || at > was) seen.set(device, at);
};

export async function jobInfo(db: Db, ids: string[]) {
  const jobs = new Map<string, JobInfo>();
  for (const part of perStatement(ids, 5000))
    for (const j of await db
      .selectFrom('jobs')
      .select(['id', 'packages', 'params'])
      .where(oneOf(db, 'id', part))
      .execute())
      jobs.set(j.id, {
        // Only what a row keeps: a job's package refs also carry digest, size and signature.
        packages: (JSON.parse(j.packages) as JobInfo['packages']).map(({ name, version }) => ({ name, version })),
        uninstall: JSON.parse(j.params).uninstall,
      });
  return jobs;
}

/** Target states just written (only those that were: a relay speaks only for its own), in the caller's transaction. */
export async function foldTargets(db: Db, changes: TargetChange[]) {
  if (!changes.length) return;
  const jobs = await jobInfo(db, [...new Set(changes.map((c) => c.job_id))]);
  const byDevice = await currentRows(db, [...new Set(changes.map((c) => c.device_id))]);
  const changed = new Map<string, Set<string>>();
  const seen = new Map<string, string>();
  for (const t of [...changes].sort((a, b) => a.updated_at.localeCompare(b.updated_at))) {
    const job = jobs.get(t.job_id);
    if (!job || t.state === 'pending') continue;
    later(seen, t.device_id, t.updated_at);
    const names = changed.get(t.device_id) ?? new Set<string>();
    applyTarget(byDevice.get(t.device_id)!, t, job, names);
    if (names.size) changed.set(t.device_id, names);
  }
  await save(db, byDevice, changed, seen);
}

/** Endpoints' verifications just stored, in the caller's transaction. */
export async function foldVerifications(db: Db, reports: VerificationChange[]) {
  if (!reports.length) return;
  const byDevice = await currentRows(db, [...new Set(reports.map((v) => v.device_id))]);
  const changed = new Map<string, Set<string>>();
  const seen = new Map<string, string>();
  for (const v of [...reports].sort((a, b) => a.at.localeCompare(b.at))) {
    later(seen, v.device_id, v.at);
    const names = changed.get(v.device_id) ?? new Set<string>();
    applyVerification(byDevice.get(v.device_id)!, v, names);
    if (names.size) changed.set(v.device_id, names);
  }
  await save(db, byDevice, changed, seen);
}
