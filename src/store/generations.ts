// Counters of change, one per kind of data other processes keep a copy of (the locations an intake
// batch holds, the inventory a relay holds): bumped in the transaction that changes the data, so a
// holder that reads another value knows its copy is old.
import { type Kysely, sql } from 'kysely';
import type { Database } from './schema.ts';

// relay-addresses: a relay's address changed (what other relays hand their endpoints as a fallback).
export type Generation = 'locations' | 'inventory' | 'relay-addresses';

export async function bumpGeneration(db: Kysely<Database>, name: Generation) {
  await db
    .insertInto('generations')
    .values({ name, value: 1 })
    .onConflict((oc) => oc.column('name').doUpdateSet({ value: sql<number>`generations.value + 1` }))
    .execute();
}

/** 0 before the first change. */
export async function generationOf(db: Kysely<Database>, name: Generation) {
  return (await generationsOf(db, [name]))[name];
}

/** Several generations in one read, each 0 before its first change. */
export async function generationsOf<N extends Generation>(db: Kysely<Database>, names: N[]) {
  const rows = await db.selectFrom('generations').select(['name', 'value']).where('name', 'in', names).execute();
  const of = Object.fromEntries(names.map((n) => [n, 0])) as Record<N, number>;
  for (const r of rows) of[r.name as N] = Number(r.value);
  return of;
}
