// Inventory import (DESIGN §3): validate the whole file, then upsert it in one transaction.
import { locationsChanged } from '../alerts/location-cache.ts';
import { newToken, sha256Hex } from '../protocol/crypto.ts';
import { FanoutError } from '../protocol/errors.ts';
import { bumpGeneration, type Db } from '../store/index.ts';
import type { InventoryFile } from './inventory-file.ts';

export { type InventoryFile, parseInventory } from './inventory-file.ts';
export { readInventory } from './inventory-read.ts';

/** Rows per insert: 10 columns each stays well under SQLite's and PostgreSQL's parameter limits. */
const IMPORT_BATCH = 500;

export async function importInventory(db: Db, inv: InventoryFile) {
  // References may point at what is already stored or at what this file adds.
  const [centers, locations, devices] = await Promise.all([
    db.selectFrom('centers').select('id').execute(),
    db.selectFrom('locations').select('code').execute(),
    db.selectFrom('devices').select(['id', 'kind', 'token_hash']).execute(),
  ]);
  const centerIds = new Set([...centers.map((c) => c.id), ...inv.centers.map((c) => c.id)]);
  const locationCodes = new Set([...locations.map((l) => l.code), ...inv.locations.map((l) => l.code)]);
  const kinds = new Map(devices.map((d) => [d.id, d.kind] as [string, string]));
  for (const d of inv.devices) kinds.set(d.id, d.kind);

  const errors: string[] = [...inv.errors];
  const seen = new Set<string>();
  const twice = (ids: string[], what: string, at: number[]) => {
    const met = new Set<string>();
    ids.forEach((id, i) => {
      if (met.has(id)) errors.push(`${what}.${at[i]} (${id}): appears twice`);
      met.add(id);
    });
  };
  twice(
    inv.centers.map((c) => c.id),
    'centers',
    inv.positions.centers,
  );
  twice(
    inv.locations.map((l) => l.code),
    'locations',
    inv.positions.locations,
  );
  inv.locations.forEach((l, i) => {
    if (!centerIds.has(l.center))
      errors.push(`locations.${inv.positions.locations[i]} (${l.code}): center "${l.center}" is not defined`);
  });
  // A relay that becomes an endpoint must not leave devices behind that still use it.
  const storedKind = new Map(devices.map((d) => [d.id, d.kind] as [string, string]));
  const users = await db
    .selectFrom('devices')
    .select(['id', 'relay', 'upstream'])
    .where((eb) => eb.or([eb('relay', 'is not', null), eb('upstream', 'is not', null)]))
    .execute();
  inv.devices.forEach((d, i) => {
    if (d.kind !== 'endpoint' || storedKind.get(d.id) !== 'relay') return;
    const using = users.filter(
      (u) =>
        (u.relay === d.id || u.upstream === d.id) &&
        !inv.devices.some((x) => x.id === u.id && x.relay !== d.id && x.upstream !== d.id),
    );
    if (using.length)
      errors.push(
        `devices.${inv.positions.devices[i]} (${d.id}): a relay cannot become an endpoint while ${using.map((u) => u.id).join(', ')} use it`,
      );
  });
  inv.devices.forEach((d, i) => {
    const at = `devices.${inv.positions.devices[i]} (${d.id})`;
    if (seen.has(d.id)) errors.push(`${at}: appears twice`);
    seen.add(d.id);
    if (!locationCodes.has(d.location)) errors.push(`${at}: location "${d.location}" is not defined`);
    if (d.kind === 'endpoint') {
      if (!d.relay) errors.push(`${at}: an endpoint needs "relay"`);
      else if (kinds.get(d.relay) !== 'relay') errors.push(`${at}: relay "${d.relay}" is not a relay in the inventory`);
    }
    if (d.rateLimitKBps && d.kind !== 'relay') errors.push(`${at}: rateLimitKBps is for relays`);
    for (const f of d.fallbackRelays ?? [])
      if (kinds.get(f) !== 'relay' || f === d.relay)
        errors.push(`${at}: fallback relay "${f}" is not another relay in the inventory`);
    if (d.kind === 'relay' && d.upstream && d.upstream !== 'master' && kinds.get(d.upstream) !== 'relay')
      errors.push(`${at}: upstream "${d.upstream}" is neither "master" nor a relay`);
  });
  (inv.windows ?? []).forEach((w, i) => {
    if (w.location && !locationCodes.has(w.location))
      errors.push(`windows.${inv.positions.windows[i]}: location "${w.location}" is not defined`);
  });
  if (errors.length) throw new FanoutError('FANOUT_ERR_INVENTORY_INVALID', { errors: errors.join('\n  ') }, errors);
  await new Promise((r) => setImmediate(r));

  // Looked up by id, not searched: an import of 100k devices stays linear.
  const storedToken = new Map(devices.map((d) => [d.id, d.token_hash]));
  const issued = new Map<string, string>();
  await db.transaction().execute(async (tx) => {
    for (const c of inv.centers) {
      const row = { id: c.id, name: c.name, email: JSON.stringify(c.email) };
      await tx
        .insertInto('centers')
        .values(row)
        .onConflict((oc) => oc.column('id').doUpdateSet({ name: row.name, email: row.email }))
        .execute();
    }
    if (inv.windows) {
      await tx.deleteFrom('maintenance_windows').execute();
      for (const w of inv.windows)
        await tx
          .insertInto('maintenance_windows')
          .values({
            location: w.location ?? null,
            label: w.label ?? null,
            cron: w.cron,
            duration_ms: Number.parseInt(w.duration, 10) * (w.duration.endsWith('h') ? 3_600_000 : 60_000),
            tz: w.tz,
          })
          .execute();
    }
    for (const l of inv.locations)
      await tx
        .insertInto('locations')
        .values(l)
        .onConflict((oc) => oc.column('code').doUpdateSet({ name: l.name, center: l.center }))
        .execute();
    if (inv.locations.length) await locationsChanged(tx);
    // Relays hold their devices' tokens and windows: they ask again (relay-channel.ts).
    await bumpGeneration(tx, 'inventory');
    // Many rows per statement, and the event loop gets a turn between batches: a master importing
    // 100k devices still answers its endpoints and its health checks.
    for (let at = 0; at < inv.devices.length; at += IMPORT_BATCH) {
      const rows = inv.devices.slice(at, at + IMPORT_BATCH).map((d) => {
        // A device keeps its token across re-imports; only new devices get one here.
        const kept = storedToken.get(d.id);
        const token = kept ? undefined : newToken();
        if (token) issued.set(d.id, token);
        return {
          id: d.id,
          kind: d.kind,
          location: d.location,
          relay: d.relay ?? null,
          upstream: d.kind === 'relay' ? (d.upstream ?? 'master') : null,
          labels: JSON.stringify(d.labels),
          hostname: d.hostname ?? null,
          fallback_relays: d.fallbackRelays?.length ? JSON.stringify(d.fallbackRelays) : null,
          rate_limit_kbps: d.rateLimitKBps ?? null,
          token_hash: token ? sha256Hex(token) : kept!,
        };
      });
      await tx
        .insertInto('devices')
        .values(rows)
        .onConflict((oc) =>
          oc.column('id').doUpdateSet((eb) => ({
            kind: eb.ref('excluded.kind'),
            location: eb.ref('excluded.location'),
            relay: eb.ref('excluded.relay'),
            upstream: eb.ref('excluded.upstream'),
            labels: eb.ref('excluded.labels'),
            hostname: eb.ref('excluded.hostname'),
            fallback_relays: eb.ref('excluded.fallback_relays'),
            rate_limit_kbps: eb.ref('excluded.rate_limit_kbps'),
          })),
        )
        .execute();
      await new Promise((r) => setImmediate(r));
    }
  });
  return {
    centers: inv.centers.length,
    locations: inv.locations.length,
    devices: inv.devices.map((d) => ({
      id: d.id,
      kind: d.kind,
      token: issued.get(d.id) ?? null,
    })),
  };
}

export async function issueDeviceToken(db: Db, id: string) {
  const token = newToken();
  await db.transaction().execute(async (tx) => {
    const r = await tx
      .updateTable('devices')
      .set({ token_hash: sha256Hex(token) })
      .where('id', '=', id)
      .executeTakeFirst();
    if (!Number(r.numUpdatedRows)) throw new FanoutError('FANOUT_ERR_DEVICE_UNKNOWN', { ids: id });
    // The old token stops working at the relay once it asks again, at once (relay-channel.ts).
    await bumpGeneration(tx, 'inventory');
  });
  return { id, token };
}
