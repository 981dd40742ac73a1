// The PostgreSQL connections kysely is given. Two things happen on the way to the server:
// - PostgreSQL's text cannot hold U+0000, and a value with one fails its whole statement: one script
//   that printed a NUL byte into an endpoint's error would stop every report of its relay, and an
//   alert with one would be lost. Text going to PostgreSQL carries U+FFFD in its place.
// - `begin` waits for the transaction's first statement and goes with it when that one has no
//   parameters (one simple query, one round trip). The lock an exclusive transaction takes first
//   (`pg_advisory_xact_lock`) then costs no wait of its own. Nothing runs between the two, so the
//   transaction is the same.
// - A statement that comes again and again on a connection is prepared under a name, so PostgreSQL
//   parses and plans it once (the intake's reads are written to read the same for any batch).
import { createHash } from 'node:crypto';
import type { PostgresPool, PostgresPoolClient } from 'kysely';
import type pg from 'pg';

type Result = { command: string; rows: unknown[]; rowCount: number | null };
const clean = (v: unknown): unknown =>
  typeof v === 'string' && v.includes('\0') ? v.replaceAll('\0', '\uFFFD') : Array.isArray(v) ? v.map(clean) : v;
// A transaction's edges as kysely's PostgreSQL driver words them.
const isBegin = (q: string) => q === 'begin';
const ends = (q: string) => (q === 'commit' || q === 'rollback' ? q.toUpperCase() : undefined);

/**
 * Runs of one text on a connection before it is prepared. The server keeps each prepared statement's
 * plan for the connection's life, so their number and text are bounded; past either, statements run
 * unnamed, as before.
 */
const PREPARE_AT = 3;
const MAX_NAMED = 200;
const MAX_NAMED_TEXT = 256 * 1024;
/** Longer texts (a batch's insert of hundreds of rows) vary with their size: they would fill the budget. */
const MAX_TEXT = 16 * 1024;
const MAX_COUNTED = 2_000;

/** What one connection has prepared, and how often it has seen the texts it has not. */
class Prepared {
  private readonly counts = new Map<string, number>();
  private readonly names = new Map<string, string>();
  private textLength = 0;
  /** Its plans no longer fit the tables: the connection is closed when released. */
  stale = false;

  config(text: string, values: unknown[]): pg.QueryConfig {
    let name = this.names.get(text);
    const fits = text.length <= MAX_TEXT && this.textLength + text.length <= MAX_NAMED_TEXT;
    if (!name && fits && this.names.size < MAX_NAMED) {
      const n = (this.counts.get(text) ?? 0) + 1;
      if (n < PREPARE_AT) {
        if (this.counts.size >= MAX_COUNTED) this.counts.clear();
        this.counts.set(text, n);
      } else {
        this.counts.delete(text);
        name = `fanout_${createHash('sha1').update(text).digest('hex').slice(0, 20)}`;
        this.names.set(text, name);
        this.textLength += text.length;
      }
    }
    return name ? { name, text, values } : { text, values };
  }

  /**
   * A table changed under a prepared statement (another master migrated it) and PostgreSQL refuses
   * the old plan: the connection goes, and its prepared statements with it.
   */
  failed(err: unknown) {
    if ((err as { code?: string }).code === '0A000') this.stale = true;
  }
}
const prepared = new WeakMap<pg.PoolClient, Prepared>();

export function pgPool(pool: pg.Pool): PostgresPool {
  return {
    async connect() {
      const client = await pool.connect();
      let statements = prepared.get(client);
      if (!statements) prepared.set(client, (statements = new Prepared()));
      const run = (q: string, params: readonly unknown[]) =>
        client.query(statements.config(q, params.map(clean))).catch((err: unknown) => {
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
