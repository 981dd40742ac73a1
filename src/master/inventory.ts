// Inventory import (DESIGN §3): validate the whole file, then upsert it in one transaction.
import YAML from 'yaml';
import { z } from 'zod';
import { newToken, sha256Hex } from '../protocol/crypto.ts';
import { FanoutError } from '../protocol/errors.ts';
import { formatZodError } from '../protocol/types.ts';
import type { Db } from '../store/index.ts';

const InventoryFile = z
  .object({
    centers: z
      .array(
        z
          .object({ id: z.string().min(1), name: z.string().min(1), email: z.array(z.string().email()).min(1) })
          .strict(),
      )
      .default([]),
    locations: z
      .array(z.object({ code: z.string().min(1), name: z.string().min(1), center: z.string().min(1) }).strict())
      .default([]),
    devices: z
      .array(
        z
          .object({
            id: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'ids are letters, digits, dot, dash and underscore'),
            kind: z.enum(['relay', 'endpoint']),
            location: z.string().min(1),
            relay: z.string().optional(),
            upstream: z.string().optional(),
            hostname: z.string().optional(),
            labels: z.record(z.string(), z.string()).default({}),
          })
          .strict(),
      )
      .default([]),
  })
  .strict();
export type InventoryFile = z.infer<typeof InventoryFile>;

export function parseInventory(text: string): InventoryFile {
  let raw: unknown;
  try {
    raw = text.trimStart().startsWith('{') ? JSON.parse(text) : YAML.parse(text);
  } catch (e) {
    throw new FanoutError(
      'FANOUT_ERR_INVENTORY_INVALID',
      { errors: `not valid YAML or JSON: ${(e as Error).message}` },
      [`not valid YAML or JSON: ${(e as Error).message}`],
    );
  }
  const r = InventoryFile.safeParse(raw ?? {});
  if (!r.success)
    throw new FanoutError(
      'FANOUT_ERR_INVENTORY_INVALID',
      { errors: formatZodError(r.error).join('\n  ') },
      formatZodError(r.error),
    );
  return r.data;
}

export async function importInventory(db: Db, inv: InventoryFile) {
  // References may point at what is already stored or at what this file adds.
  const [centers, locations, devices] = await Promise.all([
    db.selectFrom('centers').select('id').execute(),
    db.selectFrom('locations').select('code').execute(),
    db.selectFrom('devices').select(['id', 'kind']).execute(),
  ]);
  const centerIds = new Set([...centers.map((c) => c.id), ...inv.centers.map((c) => c.id)]);
  const locationCodes = new Set([...locations.map((l) => l.code), ...inv.locations.map((l) => l.code)]);
  const kinds = new Map(devices.map((d) => [d.id, d.kind] as [string, string]));
  for (const d of inv.devices) kinds.set(d.id, d.kind);

  const errors: string[] = [];
  const seen = new Set<string>();
  inv.locations.forEach((l, i) => {
    if (!centerIds.has(l.center)) errors.push(`locations.${i} (${l.code}): center "${l.center}" is not defined`);
  });
  inv.devices.forEach((d, i) => {
    const at = `devices.${i} (${d.id})`;
    if (seen.has(d.id)) errors.push(`${at}: id appears twice`);
    seen.add(d.id);
    if (!locationCodes.has(d.location)) errors.push(`${at}: location "${d.location}" is not defined`);
    if (d.kind === 'endpoint') {
      if (!d.relay) errors.push(`${at}: an endpoint needs "relay"`);
      else if (kinds.get(d.relay) !== 'relay') errors.push(`${at}: relay "${d.relay}" is not a relay in the inventory`);
    }
    if (d.kind === 'relay' && d.upstream && d.upstream !== 'master' && kinds.get(d.upstream) !== 'relay')
      errors.push(`${at}: upstream "${d.upstream}" is neither "master" nor a relay`);
  });
  if (errors.length) throw new FanoutError('FANOUT_ERR_INVENTORY_INVALID', { errors: errors.join('\n  ') }, errors);

  const issued: { id: string; kind: string; token: string }[] = [];
  await db.transaction().execute(async (tx) => {
    for (const c of inv.centers) {
      const row = { id: c.id, name: c.name, email: JSON.stringify(c.email) };
      await tx
        .insertInto('centers')
        .values(row)
        .onConflict((oc) => oc.column('id').doUpdateSet({ name: row.name, email: row.email }))
        .execute();
    }
    for (const l of inv.locations)
      await tx
        .insertInto('locations')
        .values(l)
        .onConflict((oc) => oc.column('code').doUpdateSet({ name: l.name, center: l.center }))
        .execute();
    for (const d of inv.devices) {
      const existing = await tx.selectFrom('devices').select('token_hash').where('id', '=', d.id).executeTakeFirst();
      // A device keeps its token across re-imports; only new devices get one here.
      const token = existing?.token_hash ? undefined : newToken();
      const row = {
        id: d.id,
        kind: d.kind,
        location: d.location,
        relay: d.relay ?? null,
        upstream: d.kind === 'relay' ? (d.upstream ?? 'master') : null,
        labels: JSON.stringify(d.labels),
        hostname: d.hostname ?? null,
        token_hash: token ? sha256Hex(token) : existing!.token_hash,
      };
      const { id: _id, token_hash: _t, ...update } = row;
      await tx
        .insertInto('devices')
        .values(row)
        .onConflict((oc) => oc.column('id').doUpdateSet(update))
        .execute();
      if (token) issued.push({ id: d.id, kind: d.kind, token });
    }
  });
  return {
    centers: inv.centers.length,
    locations: inv.locations.length,
    devices: inv.devices.map((d) => ({
      id: d.id,
      kind: d.kind,
      token: issued.find((t) => t.id === d.id)?.token ?? null,
    })),
  };
}

export async function issueDeviceToken(db: Db, id: string) {
  const token = newToken();
  const r = await db
    .updateTable('devices')
    .set({ token_hash: sha256Hex(token) })
    .where('id', '=', id)
    .executeTakeFirst();
  if (!Number(r.numUpdatedRows)) throw new FanoutError('FANOUT_ERR_DEVICE_UNKNOWN', { ids: id });
  return { id, token };
}
