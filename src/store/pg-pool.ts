// The PostgreSQL connections kysely is given. Three things happen on the way to the server:
// - PostgreSQL's text cannot hold U+0000, and a value with one fails its whole statement: one script
//   that printed a NUL byte into an endpoint's error would stop every report of its relay, and an
//   alert with one would be lost. Text going to PostgreSQL carries U+FFFD in its place.
// - `begin` waits for the transaction's first statement and goes with it when that one has no
//   parameters (one simple query, one round trip). The lock an exclusive transaction takes first
//   (`pg_advisory_xact_lock`) then costs no wait of its own. Nothing runs between the two, so the
//   transaction is the same.
// - A statement that comes again and again on a connection is prepared under a name, so PostgreSQL
//   parses and plans it once (pg-prepared.ts; the intake's reads read the same for any batch).
import type { PostgresPool, PostgresPoolClient } from 'kysely';
import type pg from 'pg';
import { Prepared } from './pg-prepared.ts';

type Result = { command: string; rows: unknown[]; rowCount: number | null };
const clean = (v: unknown): unknown =>
  typeof v === 'string' && v.includes('\0') ? v.replaceAll('\0', '\uFFFD') : Array.isArray(v) ? v.map(clean) : v;
// A transaction's edges as kysely's PostgreSQL driver words them.
const isBegin = (q: string) => q === 'begin';
const ends = (q: string) => (q === 'commit' || q === 'rollback' ? q.toUpperCase() : undefined);

const prepared = new WeakMap<pg.PoolClient, Prepared>();

export function pgPool(pool: pg.Pool, opts: { prepare: boolean } = { prepare: true }): PostgresPool {
  return {
    async connect() {
      const client = await pool.connect();
      let statements = prepared.get(client);
      if (!statements) prepared.set(client, (statements = Prepared.of(client)));
      const drops = statements.takeDrops();
      // Outside any transaction: a name that cannot be dropped costs nothing but its memory.
      if (drops) await client.query(drops).catch(() => {});
      const run = (q: string, params: readonly unknown[]) =>
        client
          .query(opts.prepare ? statements.config(q, params.map(clean)) : { text: q, values: params.map(clean) })
          .catch((err: unknown) => {
            statements.failed(err);
            throw err;
          });
      let begun = false;
      const query = async (q: string, params: readonly unknown[] = []): Promise<Result> => {
        if (!begun) {
          if (isBegin(q)) {
            begun = true;
            return { command: 'BEGIN', rows: [], rowCount: null };
          }
          return params.length ? run(q, params) : client.query(q);
        }
        begun = false;
        const end = ends(q);
        // A transaction that ran nothing has nothing to end.
        if (end) return { command: end, rows: [], rowCount: null };
        if (params.length) {
          await client.query('begin');
          return run(q, params);
        }
        const all = (await client.query(`begin; ${q}`)) as unknown as Result[];
        return all[all.length - 1];
      };
      return {
        // Only plain queries: no cursor is configured, so kysely never streams.
        query: query as unknown as PostgresPoolClient['query'],
        release: (destroy?: boolean) => {
          begun = false;
          client.release(destroy || statements.stale);
        },
      };
    },
    end: () => pool.end(),
  };
}
