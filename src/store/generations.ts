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
  const row = await db.selectFrom('generations').select('value').where('name', '=', name).executeTakeFirst();
  return Number(row?.value ?? 0);
}
