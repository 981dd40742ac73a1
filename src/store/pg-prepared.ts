// Statements that come again and again on a PostgreSQL connection are prepared under a name, so the
// server parses and plans them once. The server keeps a prepared statement for the connection's life,
// so the names are bounded by number and by text; past either, the least recently used is dropped
// (`deallocate`, sent when the connection is next taken, outside any transaction).
import type pg from 'pg';

/** Runs of one text on a connection before it is prepared. */
const PREPARE_AT = 3;
const MAX_NAMED = 200;
const MAX_NAMED_TEXT = 256 * 1024;
/** Longer texts (a batch's insert of hundreds of rows) vary with their size: each would take much of the room. */
const MAX_TEXT = 16 * 1024;
const MAX_COUNTED = 2_000;

/** pg's record of the names the server has parsed on this connection (internal to pg, so optional). */
type Parsed = Record<string, string> | undefined;

export class Prepared {
  private readonly counts = new Map<string, number>();
  /** Named texts, least recently used first. */
  private readonly names = new Map<string, string>();
  private textLength = 0;
  private made = 0;
  private drops: string[] = [];
  /** Its plans no longer fit the tables: the connection is closed when released. */
  stale = false;

  constructor(private readonly parsed: Parsed) {}

  static of(client: pg.PoolClient) {
    return new Prepared(
      (client as unknown as { connection?: { parsedStatements?: Parsed } }).connection?.parsedStatements,
    );
  }

  config(text: string, values: unknown[]): pg.QueryConfig {
    let name = this.names.get(text);
    if (name) {
      this.names.delete(text);
      this.names.set(text, name);
    } else if (text.length <= MAX_TEXT) {
      const runs = (this.counts.get(text) ?? 0) + 1;
      if (runs < PREPARE_AT) {
        if (this.counts.size >= MAX_COUNTED) this.counts.clear();
        this.counts.set(text, runs);
      } else {
        this.counts.delete(text);
        if (!this.makeRoom(text.length)) return { text, values };
        name = `fanout_${++this.made}`;
        this.names.set(text, name);
        this.textLength += text.length;
      }
    }
    return name ? { name, text, values } : { text, values };
  }

  /** Drops the least recently used names until `length` more fits; false when pg's record is out of reach. */
  private makeRoom(length: number) {
    while (this.names.size >= MAX_NAMED || this.textLength + length > MAX_NAMED_TEXT) {
      if (!this.parsed) return false;
      const [text, name] = this.names.entries().next().value!;
      this.names.delete(text);
      this.textLength -= text.length;
      // Only a statement the server parsed exists there to be dropped.
      if (this.parsed[name] !== undefined) this.drops.push(name);
      delete this.parsed[name];
    }
    return true;
  }

  /** What to send when the connection is next taken: the dropped names' `deallocate`. */
  takeDrops() {
    const sql = this.drops.map((n) => `deallocate "${n}"`).join('; ');
    this.drops = [];
    return sql;
  }

  /**
   * A table changed under a prepared statement (another master migrated it) and PostgreSQL refuses
   * the old plan: the connection goes, and its prepared statements with it.
   */
  failed(err: unknown) {
    if ((err as { code?: string }).code === '0A000') this.stale = true;
  }
}
