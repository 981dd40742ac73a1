// The PostgreSQL connections kysely is given. Two things happen on the way to the server:
// - PostgreSQL's text cannot hold U+0000, and a value with one fails its whole statement: one script
//   that printed a NUL byte into an endpoint's error would stop every report of its relay, and an
//   alert with one would be lost. Text going to PostgreSQL carries U+FFFD in its place.
// - `begin` waits for the transaction's first statement and goes with it when that one has no
//   parameters (one simple query, one round trip). The lock an exclusive transaction takes first
//   (`pg_advisory_xact_lock`) then costs no wait of its own. Nothing runs between the two, so the
//   transaction is the same.
import type { PostgresPool, PostgresPoolClient } from 'kysely';
import type pg from 'pg';

type Result = { command: string; rows: unknown[]; rowCount: number | null };
const clean = (v: unknown) => (typeof v === 'string' && v.includes('\0') ? v.replaceAll('\0', '\uFFFD') : v);
// A transaction's edges as kysely's PostgreSQL driver words them.
const isBegin = (q: string) => q === 'begin';
const ends = (q: string) => (q === 'commit' || q === 'rollback' ? q.toUpperCase() : undefined);

export function pgPool(pool: pg.Pool): PostgresPool {
  return {
    async connect() {
      const client = await pool.connect();
      let begun = false;
      const query = async (q: string, params: readonly unknown[] = []): Promise<Result> => {
        if (!begun) {
          if (isBegin(q)) {
            begun = true;
            return { command: 'BEGIN', rows: [], rowCount: null };
          }
          return client.query(q, params.map(clean));
        }
        begun = false;
        const end = ends(q);
        // A transaction that ran nothing has nothing to end.
        if (end) return { command: end, rows: [], rowCount: null };
        if (params.length) {
          await client.query('begin');
          return client.query(q, params.map(clean));
        }
        const all = (await client.query(`begin; ${q}`)) as unknown as Result[];
        return all[all.length - 1];
      };
      return {
        // Only plain queries: no cursor is configured, so kysely never streams.
        query: query as unknown as PostgresPoolClient['query'],
        release: (destroy?: boolean) => {
          begun = false;
          client.release(destroy);
        },
      };
    },
    end: () => pool.end(),
  };
}
