// The fleet as operators ask about it (DESIGN §14, §17): which version runs where, attested or
// drifted, which sites are healthy, which devices were not seen for a while. Built from the
// inventory, the targets' last states and attestations, endpoints' verifications and relays' heartbeats.
import type { Db } from '../store/index.ts';

export interface FleetPackage {
  name: string;
  version: string;
  /** attested: installed with the signed tree; drift, tampered, failed: what went wrong last. */
  state: 'attested' | 'installed' | 'drift' | 'tampered' | 'failed';
  at: string;
}

export interface FleetDevice {
  id: string;
  kind: string;
  location: string;
  site: string;
  relay: string | null;
  /** The same as `relay` (DESIGN §16's name). */
  relayId: string | null;
  lastSeen: string | null;
  /** NAME → VERSION of what the device runs (DESIGN §16); `packages` says how each stands. */
  installed: Record<string, string>;
  health: 'ok' | 'attention' | 'unknown';
  packages: FleetPackage[];
}

const TROUBLE: Record<string, FleetPackage['state']> = { DRIFT: 'drift', TAMPERED: 'tampered' };

export async function fleetView(
  db: Db,
  q: { search?: string; package?: string; location?: string; limit: number; offset: number },
) {
  const [devices, locations, relays, targets, jobs, verifications] = await Promise.all([
    db.selectFrom('devices').select(['id', 'kind', 'location', 'relay', 'hostname', 'labels']).orderBy('id').execute(),
    db.selectFrom('locations').select(['code', 'name']).execute(),
    db.selectFrom('relays').select(['id', 'last_heartbeat', 'down_since']).execute(),
    db
      .selectFrom('targets')
      .select(['job_id', 'device_id', 'state', 'failure_type', 'updated_at', 'attestation'])
      .orderBy('updated_at')
      .execute(),
    db.selectFrom('jobs').select(['id', 'packages', 'params']).execute(),
    db.selectFrom('verifications').select(['device_id', 'package', 'version', 'state', 'at']).orderBy('id').execute(),
  ]);
  const site = new Map(locations.map((l) => [l.code, l.name]));
  const packagesOf = new Map(jobs.map((j) => [j.id, JSON.parse(j.packages) as { name: string; version: string }[]]));
  const heard = new Map(relays.map((r) => [r.id, r]));
  const uninstalls = new Map(
    jobs.flatMap((j) => {
      const name = (JSON.parse(j.params) as { uninstall?: string }).uninstall;
      return name ? [[j.id, name] as const] : [];
    }),
  );
  const byDevice = new Map<string, { seen: string | null; packages: Map<string, FleetPackage> }>();
  const mine = (id: string) => {
    let d = byDevice.get(id);
    if (!d) byDevice.set(id, (d = { seen: null, packages: new Map() }));
    return d;
  };
  const saw = (d: { seen: string | null }, at: string) => {
    if (!d.seen || at > d.seen) d.seen = at;
  };
  // Targets in time order: each package's last word wins.
  for (const t of targets) {
    const d = mine(t.device_id);
    if (t.state !== 'pending') saw(d, t.updated_at);
    const removed = uninstalls.get(t.job_id);
    if (removed && t.state === 'installed') d.packages.delete(removed);
    for (const p of packagesOf.get(t.job_id) ?? []) {
      if (t.state === 'installed')
        d.packages.set(p.name, {
          ...p,
          state: t.attestation ? 'attested' : 'installed',
          at: t.updated_at,
        });
      // Drifted or tampered files are on the disk whatever ran before; another failure counts only
      // against the version the device is known to run.
      else if (t.state === 'failed' && (TROUBLE[t.failure_type ?? ''] || d.packages.get(p.name)?.version === p.version))
        d.packages.set(p.name, { ...p, state: TROUBLE[t.failure_type ?? ''] ?? 'failed', at: t.updated_at });
    }
  }
  // A later verification says whether the installed version is still what was signed.
  for (const v of verifications) {
    const d = mine(v.device_id);
    saw(d, v.at);
    const p = d.packages.get(v.package);
    if (!p || p.version !== v.version || v.at < p.at) continue;
    d.packages.set(v.package, { ...p, state: v.state === 'ok' ? 'attested' : 'drift', at: v.at });
  }
  const all: FleetDevice[] = devices.map((dev) => {
    const d = byDevice.get(dev.id);
    const relay = heard.get(dev.id);
    const packages = [...(d?.packages.values() ?? [])].sort((a, b) => a.name.localeCompare(b.name));
    const trouble = packages.some((p) => p.state !== 'attested' && p.state !== 'installed') || !!relay?.down_since;
    return {
      id: dev.id,
      kind: dev.kind,
      location: dev.location,
      site: site.get(dev.location) ?? dev.location,
      relay: dev.relay,
      relayId: dev.relay,
      installed: Object.fromEntries(packages.map((p) => [p.name, p.version])),
      lastSeen: dev.kind === 'relay' ? (relay?.last_heartbeat ?? null) : (d?.seen ?? null),
      health: trouble ? 'attention' : packages.length || relay ? 'ok' : 'unknown',
      packages,
    };
  });
  const s = q.search?.trim().toLowerCase();
  const hostOf = new Map(devices.map((d) => [d.id, `${d.hostname ?? ''} ${d.labels}`.toLowerCase()]));
  const filtered = all.filter(
    (d) => (!q.package || d.installed[q.package] !== undefined) && (!q.location || d.location === q.location),
  );
  const found = s
    ? filtered.filter((d) =>
        [
          d.id,
          d.location,
          d.site,
          d.relay ?? '',
          hostOf.get(d.id) ?? '',
          ...d.packages.map((p) => `${p.name}@${p.version}`),
        ]
          .join(' ')
          .toLowerCase()
          .includes(s),
      )
    : filtered;
  return {
    total: found.length,
    devices: found.slice(q.offset, q.offset + q.limit),
    sites: summarize(found, (d) => [`${d.location}\t${d.site}`]).map(([key, n]) => {
      const [location, name] = key.split('\t');
      const here = found.filter((d) => d.location === location);
      return { location, name, devices: n, attention: here.filter((d) => d.health === 'attention').length };
    }),
    versions: summarize(found, (d) => d.packages.map((p) => `${p.name}@${p.version}`)).map(([pkg, n]) => ({
      package: pkg,
      devices: n,
    })),
  };
}

function summarize(devices: FleetDevice[], keys: (d: FleetDevice) => string[]): [string, number][] {
  const counts = new Map<string, number>();
  for (const d of devices) for (const k of keys(d)) counts.set(k, (counts.get(k) ?? 0) + 1);
  return [...counts].sort((a, b) => a[0].localeCompare(b[0]));
}
