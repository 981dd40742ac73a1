// The fleet as operators ask about it (DESIGN §14, §17): which version runs where, attested or
// drifted, which sites are healthy, which devices were not seen for a while. Built from the
// inventory, what each device runs (kept as targets and verifications are written) and relays' heartbeats.
import { type Compilable, type ExpressionBuilder, type SqlBool, sql } from 'kysely';
import { type Database, type Db, oneOf, type Scan } from '../store/index.ts';

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

const SOUND = ['attested', 'installed'];
/** Expressions over a device row, `devices as d`. */
type DeviceEb = ExpressionBuilder<Database & { d: Database['devices'] }, 'd'>;

/**
 * A page of the fleet, with its sites and versions, from what each device runs as kept when reports
 * arrive (store/device-packages.ts): the filters, counts and paging run in the database.
 */
export async function fleetView(
  db: Db,
  scan: Scan,
  q: { search?: string; package?: string; location?: string; limit: number; offset: number },
) {
  const s = q.search?.trim().toLowerCase();
  const like = s && `%${s.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
  const matches = (col: string) => sql<SqlBool>`lower(coalesce(${sql.ref(col)}, '')) like ${like} escape '\\'`;
  const runs = (eb: DeviceEb) =>
    eb
      .selectFrom('device_packages as dp')
      .select('dp.device_id')
      .whereRef('dp.device_id', '=', 'd.id')
      .where('dp.state', '!=', 'removed');
  const filtered = db
    .selectFrom('devices as d')
    .$if(!!q.location, (qb) => qb.where('d.location', '=', q.location!))
    .$if(!!q.package, (qb) => qb.where((eb) => eb.exists(runs(eb).where('dp.name', '=', q.package!))))
    .$if(!!like, (qb) =>
      qb.where((eb) =>
        eb.or([
          ...['d.id', 'd.location', 'd.relay', 'd.hostname', 'd.labels'].map(matches),
          eb.exists(
            eb
              .selectFrom('locations as l')
              .select('l.code')
              .whereRef('l.code', '=', 'd.location')
              .where(matches('l.name')),
          ),
          eb.exists(runs(eb).where(sql<SqlBool>`lower(dp.name || '@' || dp.version) like ${like} escape '\\'`)),
        ]),
      ),
    );
  const attention = (eb: DeviceEb) =>
    eb.or([
      eb.exists(runs(eb).where('dp.state', 'not in', SOUND)),
      eb.exists(
        eb.selectFrom('relays as r').select('r.id').whereRef('r.id', '=', 'd.id').where('r.down_since', 'is not', null),
      ),
    ]);
  // Each reads every device the filter keeps (a search at 100,000 devices takes about a second):
  // run where they do not hold the master's event loop (store/scan.ts), not through `db`.
  const read = <T>(query: Compilable<T>) => {
    const c = query.compile();
    return scan<T>(c.sql, c.parameters);
  };
  const [[total], page, sites, versions] = await Promise.all([
    read(filtered.select((eb) => eb.fn.countAll<number>().as('n'))),
    read(filtered.select(['d.id', 'd.kind', 'd.location', 'd.relay']).orderBy('d.id').limit(q.limit).offset(q.offset)),
    read(
      filtered
        .select((eb) => [
          'd.location',
          eb.fn.countAll<number>().as('devices'),
          eb.fn.sum<number>(eb.case().when(attention(eb)).then(1).else(0).end()).as('attention'),
        ])
        .groupBy('d.location'),
    ),
    read(
      db
        .selectFrom('device_packages')
        .select((eb) => ['name', 'version', eb.fn.countAll<number>().as('devices')])
        .where('state', '!=', 'removed')
        .where('device_id', 'in', filtered.select('d.id'))
        .groupBy(['name', 'version']),
    ),
  ]);
  const ids = page.map((d) => d.id);
  // The page's own rows (an empty page reads none: `oneOf` of nothing matches nothing).
  const [packages, seen, relays, locations] = await Promise.all([
    db
      .selectFrom('device_packages')
      .selectAll()
      .where(oneOf(db, 'device_id', ids))
      .where('state', '!=', 'removed')
      .execute(),
    db
      .selectFrom('device_seen')
      .selectAll()
      .where(oneOf(db, 'device_id', ids))
      .execute(),
    db
      .selectFrom('relays')
      .select(['id', 'last_heartbeat', 'down_since'])
      .where(oneOf(db, 'id', ids))
      .execute(),
    db.selectFrom('locations').select(['code', 'name']).execute(),
  ]);
  const site = new Map(locations.map((l) => [l.code, l.name]));
  const heard = new Map(relays.map((r) => [r.id, r]));
  const seenAt = new Map(seen.map((r) => [r.device_id, r.at]));
  const runsOn = new Map<string, FleetPackage[]>();
  for (const p of packages)
    runsOn.set(p.device_id, [
      ...(runsOn.get(p.device_id) ?? []),
      { name: p.name, version: p.version, state: p.state as FleetPackage['state'], at: p.at },
    ]);
  const devices: FleetDevice[] = page.map((dev) => {
    const relay = heard.get(dev.id);
    const pkgs = (runsOn.get(dev.id) ?? []).sort((a, b) => a.name.localeCompare(b.name));
    const trouble = pkgs.some((p) => !SOUND.includes(p.state)) || !!relay?.down_since;
    return {
      id: dev.id,
      kind: dev.kind,
      location: dev.location,
      site: site.get(dev.location) ?? dev.location,
      relay: dev.relay,
      relayId: dev.relay,
      installed: Object.fromEntries(pkgs.map((p) => [p.name, p.version])),
      lastSeen: dev.kind === 'relay' ? (relay?.last_heartbeat ?? null) : (seenAt.get(dev.id) ?? null),
      health: trouble ? 'attention' : pkgs.length || relay ? 'ok' : 'unknown',
      packages: pkgs,
    };
  });
  return {
    total: Number(total.n),
    devices,
    sites: sites
      .map((r) => ({
        location: r.location,
        name: site.get(r.location) ?? r.location,
        devices: Number(r.devices),
        attention: Number(r.attention),
      }))
      .sort((a, b) => `${a.location}\t${a.name}`.localeCompare(`${b.location}\t${b.name}`)),
    versions: versions
      .map((v) => ({ package: `${v.name}@${v.version}`, devices: Number(v.devices) }))
      .sort((a, b) => a.package.localeCompare(b.package)),
  };
}
