// The data-access layer: the only place that knows which SQL driver is behind the master's database.

import { createHash, randomUUID } from 'node:crypto';
import BetterSqlite3 from 'better-sqlite3';
import {
  CompiledQuery,
  Kysely,
  type MigrationProvider,
  Migrator,
  PostgresDialect,
  SqliteDialect,
  sql,
  type Transaction,
} from 'kysely';
import pg from 'pg';
import { migrations } from './migrations.ts';
import { pgPool } from './pg-pool.ts';
import { type Scan, sqliteScanner } from './scan.ts';
import type { Database } from './schema.ts';
import { sqliteConnections, withStatementCache } from './sqlite-statements.ts';

export { foldTargets, foldVerifications, noteSeen } from './device-packages.ts';
export { bumpGeneration, generationOf, generationsOf } from './generations.ts';
export type { Scan } from './scan.ts';
export type { Database } from './schema.ts';
export { rowWriter } from './sqlite-statements.ts';
export { isPostgres, oneOf, pairOf, perStatement, readTogether } from './together.ts';
export type Db = Kysely<Database>;

export interface Store {
  db: Db;
  dialect: 'sqlite' | 'postgres';
  /** Makes a transaction the only one holding `name` until it ends, across every process on this database. */
  exclusive(tx: Transaction<Database>, name: string): Promise<void>;
  /**
   * Tells every process on this database (PostgreSQL NOTIFY; with SQLite there is only this one):
   * `onNotice` receives what any of them sent, this one included.
   */
  notify(channel: string, payload: string): Promise<void>;
  onNotice(channel: string, fn: (payload: string) => void): Promise<void>;
  /**
   * Claims the periodic work `name` for this process for `ms`: true for exactly one of the processes
   * sharing the database until the claim runs out (this process again included).
   */
  claim(name: string, ms: number): Promise<boolean>;
  /** Read-only SQL that may scan whole tables, run where it does not hold this process's event loop (scan.ts). */
  scan: Scan;
  close(): Promise<void>;
}

/** Opens `postgres://…` or a SQLite file path, and brings its schema up to date. */
export async function openStore(url: string): Promise<Store> {
  const dialect = /^postgres(ql)?:\/\//.test(url) ? 'postgres' : 'sqlite';
  let db: Db;
  let scanner: ReturnType<typeof sqliteScanner> | undefined;
  if (dialect === 'postgres') {
    // bigint columns (sizes) come back as numbers: our sizes stay far below 2^53.
    pg.types.setTypeParser(20, (v) => Number(v));
    const pool = new pg.Pool({ connectionString: url, max: 8 });
    // An idle connection dropped by the server (restart, admin kill) is replaced on next use, not fatal.
    pool.on('error', (err) => process.emitWarning(`PostgreSQL connection lost: ${err.message}`));
    // FANOUT_PG_PREPARE=off: for a pooler that cannot keep prepared statements (docs/scale-out.md).
    const prepare = process.env.FANOUT_PG_PREPARE !== 'off';
    db = new Kysely<Database>({ dialect: new PostgresDialect({ pool: pgPool(pool, { prepare }) }) });
  } else {
    const file = url.replace(/^sqlite:(\/\/)?/, '');
    const conn = (() => {
      try {
        return new BetterSqlite3(file);
      } catch (e) {
        throw new Error(`cannot use the database ${file}: ${(e as Error).message}`);
      }
    })();
    conn.pragma('journal_mode = WAL');
    // FULL: an acknowledged write (an alert, a report) survives a power cut, not only a crash.
    conn.pragma('synchronous = FULL');
    conn.pragma('busy_timeout = 5000');
    db = new Kysely<Database>({ dialect: new SqliteDialect({ database: withStatementCache(conn) }) });
    sqliteConnections.set(db, conn);
    scanner = sqliteScanner(file);
  }
  const provider: MigrationProvider = { getMigrations: async () => migrations(dialect) };
  const { error, results } = await new Migrator({ db, provider }).migrateToLatest();
  if (error) {
    await db.destroy();
    const failed = results?.find((r) => r.status === 'Error');
    const msg = (error as Error).message;
    if (/previously executed migration .* is missing/.test(msg))
      throw new Error(
        `the database has a schema newer than this Fanout (${msg}); run the newer version, or point --db elsewhere`,
      );
    // No migration ran: the database itself could not be reached or opened.
    if (!failed) throw new Error(`cannot use the database ${shownUrl(url)}: ${msg}`);
    throw new Error(`database migration ${failed.migrationName} failed: ${msg}`);
  }
  const exclusive = async (tx: Transaction<Database>, name: string) => {
    // SQLite has one writer per file already; PostgreSQL gets a transaction-scoped advisory lock.
    if (dialect !== 'postgres') return;
    const key = createHash('sha256').update(name).digest().readBigInt64BE(0);
    // A literal (a number we made), so that it goes with the transaction's `begin` (pg-pool.ts).
    await sql.raw(`select pg_advisory_xact_lock(${key.toString()})`).execute(tx);
  };
  const local = new Map<string, ((p: string) => void)[]>();
  let listener: pg.Client | undefined;
  const onNotice = async (channel: string, fn: (payload: string) => void) => {
    local.set(channel, [...(local.get(channel) ?? []), fn]);
    if (dialect !== 'postgres') return;
    if (!listener) {
      listener = new pg.Client({ connectionString: url });
      listener.on('notification', (n) => {
        for (const f of local.get(n.channel) ?? []) f(n.payload ?? '');
      });
      listener.on('error', (err) => process.emitWarning(`PostgreSQL listener lost: ${err.message}`));
      await listener.connect();
    }
    await listener.query(`listen ${channel}`);
  };
  const notify = async (channel: string, payload: string) => {
    if (dialect !== 'postgres') {
      for (const f of local.get(channel) ?? []) f(payload);
      return;
    }
    await sql`select pg_notify(${channel}, ${payload})`.execute(db);
  };
  const holder = `${process.pid}-${randomUUID()}`;
  const claim = async (name: string, ms: number) => {
    const now = new Date();
    const until_at = new Date(now.getTime() + ms).toISOString();
    const r = await db
      .insertInto('claims')
      .values({ name, holder, until_at })
      .onConflict((oc) =>
        oc
          .column('name')
          .doUpdateSet({ holder, until_at })
          .where((eb) => eb.or([eb('claims.until_at', '<=', now.toISOString()), eb('claims.holder', '=', holder)])),
      )
      .executeTakeFirst();
    return Number(r.numInsertedOrUpdatedRows ?? 0) > 0;
  };
  const scan: Scan =
    scanner?.scan ??
    (async <T>(text: string, parameters: readonly unknown[] = []) =>
      (await db.executeQuery<T>(CompiledQuery.raw(text, [...parameters]))).rows);
  const close = async () => {
    await scanner?.close();
    await listener?.end().catch(() => undefined);
    await db.destroy();
  };
  return { db, dialect, exclusive, notify, onNotice, claim, scan, close };
}

/** A database URL as it may be shown: without its password. */
function shownUrl(url: string) {
  try {
    const u = new URL(url);
    if (!u.password) return url;
    u.password = '***';
    return u.toString();
  } catch {
    return url;
  }
}
