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
type Row = Database['device_packages'];
export type JobInfo = { packages: { name: string; version: string }[]; uninstall?: string };

const TROUBLE: Record<string, string> = { DRIFT: 'drift', TAMPERED: 'tampered' };

/** The device's packages after one target change (`rows` by package name, changed in place). */
function applyTarget(rows: Map<string, Row>, t: TargetChange, job: JobInfo, changed: Set<string>) {
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

function applyVerification(rows: Map<string, Row>, v: VerificationChange, changed: Set<string>) {
  const p = rows.get(v.package);
  if (!p || p.state === 'removed' || p.version !== v.version || v.at < p.at) return;
  rows.set(v.package, { ...p, state: v.state === 'ok' ? 'attested' : 'drift', at: v.at });
  changed.add(v.package);
}

async function currentRows(db: Db, devices: string[]) {
  const byDevice = new Map<string, Map<string, Row>>();
  for (const part of perStatement(devices, 5000))
    for (const r of await db
      .selectFrom('device_packages')
      .selectAll()
      .where(oneOf(db, 'device_id', part))
      .execute())
      byDevice.set(r.device_id, (byDevice.get(r.device_id) ?? new Map()).set(r.name, r));
  return byDevice;
}

async function save(db: Db, rows: Row[], seen: Map<string, string>) {
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
  await noteSeen(db, seen);
}

/** When devices were last heard of, each kept if later than what is stored. */
export async function noteSeen(db: Db, seen: Map<string, string>) {
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

/** Each job's packages (name and version) and the package it uninstalls; every job when no ids are given. */
export async function jobInfo(db: Db, ids?: string[]) {
  const query = () => db.selectFrom('jobs').select(['id', 'packages', 'params']);
  const rows = ids ? [] : await query().execute();
  for (const part of perStatement(ids ?? [], 5000))
    rows.push(
      ...(await query()
        .where(oneOf(db, 'id', part))
        .execute()),
    );
  const jobs = new Map<string, JobInfo>();
  for (const j of rows)
    jobs.set(j.id, {
      // Only what a row keeps: a job's package refs also carry digest, size and signature.
      packages: (JSON.parse(j.packages) as JobInfo['packages']).map(({ name, version }) => ({ name, version })),
      uninstall: JSON.parse(j.params).uninstall,
    });
  return jobs;
}

/** A target's step or a verification, at its own time. */
export interface Change {
  at: string;
  device: string;
  t?: TargetChange;
  v?: VerificationChange;
}
export const targetChanges = (ts: TargetChange[]): Change[] =>
  ts.filter((t) => t.state !== 'pending').map((t) => ({ at: t.updated_at, device: t.device_id, t }));
export const verificationChanges = (vs: VerificationChange[]): Change[] =>
  vs.map((v) => ({ at: v.at, device: v.device_id, v }));

/**
 * Applies changes to the rows devices have (`byDevice`, changed in place) in their own time order,
 * targets before verifications at the same time, and saves the rows that moved and when each
 * device was last heard of.
 */
export async function fold(
  db: Db,
  byDevice: Map<string, Map<string, Row>>,
  jobs: Map<string, JobInfo>,
  changes: Change[],
) {
  const moved = new Map<string, Set<string>>();
  const seen = new Map<string, string>();
  const order = (c: Change) => (c.t ? 0 : 1);
  for (const { at, device, t, v } of [...changes].sort((a, b) => a.at.localeCompare(b.at) || order(a) - order(b))) {
    const rows = byDevice.get(device) ?? new Map<string, Row>();
    byDevice.set(device, rows);
    const names = moved.get(device) ?? new Set<string>();
    moved.set(device, names);
    const was = seen.get(device);
    if (!was || at > was) seen.set(device, at);
    const job = t && jobs.get(t.job_id);
    if (t && job) applyTarget(rows, t, job, names);
    if (v) applyVerification(rows, v, names);
  }
  const rows = [...moved].flatMap(([device, names]) => [...names].map((n) => byDevice.get(device)!.get(n)!));
  await save(db, rows, seen);
}

/** Target states just written (only those that were: a relay speaks only for its own), in the caller's transaction. */
export async function foldTargets(db: Db, written: TargetChange[]) {
  if (!written.length) return;
  const jobs = await jobInfo(db, [...new Set(written.map((c) => c.job_id))]);
  const byDevice = await currentRows(db, [...new Set(written.map((c) => c.device_id))]);
  await fold(db, byDevice, jobs, targetChanges(written));
}

/** Endpoints' verifications just stored, in the caller's transaction. */
export async function foldVerifications(db: Db, reports: VerificationChange[]) {
  if (!reports.length) return;
  const byDevice = await currentRows(db, [...new Set(reports.map((v) => v.device_id))]);
  await fold(db, byDevice, new Map(), verificationChanges(reports));
}
