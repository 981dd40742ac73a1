// Several reads as one statement. On PostgreSQL every statement is a round trip, and a transaction
// that made ten independent reads waited ten times; here each read's rows come back as one JSON
// array column of a single select. SQLite runs in this process, so it runs the reads as they are.
import {
  type Expression,
  type InferResult,
  type Kysely,
  PostgresAdapter,
  type SelectQueryBuilder,
  type SqlBool,
  sql,
  type Transaction,
} from 'kysely';
import { jsonArrayFrom } from 'kysely/helpers/postgres';
import type { Database } from './schema.ts';

/** A read of any tables: only the rows' type matters here. */
type Read = SelectQueryBuilder<Database, any, object>;

/**
 * `xs` in parts of up to 500: rows (or values read for) per statement. A part of alert rows
 * carries 17 parameters each, far below SQLite's and PostgreSQL's limits.
 */
export const perStatement = <T>(xs: T[], size = 500) =>
  Array.from({ length: Math.ceil(xs.length / size) }, (_, i) => xs.slice(i * size, (i + 1) * size));

/** True when `db` talks to PostgreSQL, where each statement is a round trip. */
export const isPostgres = (db: Db) =>
  // getExecutor is marked internal, but it is how a query learns the dialect it is built for.
  db.getExecutor().adapter instanceof PostgresAdapter;

type Db = Kysely<Database> | Transaction<Database>;

/**
 * `column` is one of `values`, given as one parameter: the statement's text is the same however
 * many values there are, so SQLite's statement cache and PostgreSQL's prepared plans keep serving it.
 */
export const oneOf = (db: Db, column: string, values: readonly string[]): Expression<SqlBool> =>
  isPostgres(db)
    ? sql<SqlBool>`${sql.ref(column)} = any(${values})`
    : sql<SqlBool>`${sql.ref(column)} in (select value from json_each(${JSON.stringify(values)}))`;

/** `(a, b)` is one of `pairs`, given as one parameter per column (as `oneOf`). */
export const pairOf = (db: Db, [a, b]: [string, string], pairs: readonly [string, string][]): Expression<SqlBool> =>
  isPostgres(db)
    ? sql<SqlBool>`(${sql.ref(a)}, ${sql.ref(b)}) in (select * from unnest(${pairs.map((p) => p[0])}::text[], ${pairs.map((p) => p[1])}::text[]))`
    : sql<SqlBool>`(${sql.ref(a)}, ${sql.ref(b)}) in (select value ->> 0, value ->> 1 from json_each(${JSON.stringify(pairs)}))`;

/** Runs every read of `reads` and answers each one's rows under its name. */
export async function readTogether<R extends Record<string, Read>>(
  db: Db,
  reads: R,
): Promise<{ [K in keyof R]: InferResult<R[K]> }> {
  const names = Object.keys(reads) as (keyof R & string)[];
  if (isPostgres(db)) {
    if (!names.length) return {} as { [K in keyof R]: InferResult<R[K]> };
    const row = (await db
      .selectNoFrom(names.map((n) => jsonArrayFrom(reads[n]).as(n)))
      .executeTakeFirstOrThrow()) as Record<string, unknown>;
    return Object.fromEntries(names.map((n) => [n, row[n]])) as { [K in keyof R]: InferResult<R[K]> };
  }
  const rows = await Promise.all(names.map((n) => reads[n].execute()));
  return Object.fromEntries(names.map((n, i) => [n, rows[i]])) as { [K in keyof R]: InferResult<R[K]> };
}
