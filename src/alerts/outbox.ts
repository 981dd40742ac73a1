// What the mailer and the webhook sender share: items due now, each claimed by one master at a time,
// and passes that never overlap (a kick during a pass runs one more pass after it).
import type { Selectable } from 'kysely';
import type { Database, Db } from '../store/index.ts';

/**
 * How long a claim holds. A send is cut off before its claim lapses (see Mailer), so no other master
 * sends an item while one still is; a master that dies holding a claim delays its item by no more
 * than this.
 */
export const CLAIM_MS = 15_000;

type OutboxTable = 'outbox' | 'webhook_outbox';

/**
 * The next item after id `after` due at `now`, claimed for `claimMs` from this moment (PostgreSQL: FOR UPDATE SKIP
 * LOCKED, so two masters take different items). One at a time, claimed just before it is sent: items
 * claimed together and sent one after another would lapse while still waiting their turn, and another
 * master would send them too.
 */
function claimNext<T extends OutboxTable>(
  db: Db,
  table: T,
  now: Date,
  lockRows: boolean,
  after: number,
  claimMs = CLAIM_MS,
): Promise<Selectable<Database[T]> | undefined> {
  const t = table as 'outbox'; // both tables have id, state, next_at and claimed_until
  const at = new Date(Math.max(now.getTime(), Date.now()));
  return db.transaction().execute(async (tx) => {
    let q = tx
      .selectFrom(t)
      .selectAll()
      .where('state', '=', 'pending')
      .where('id', '>', after)
      .where('next_at', '<=', now.toISOString())
      .where((eb) => eb.or([eb('claimed_until', 'is', null), eb('claimed_until', '<', at.toISOString())]))
      .orderBy('id')
      .limit(1);
    if (lockRows) q = q.forUpdate().skipLocked();
    const item = await q.executeTakeFirst();
    if (item)
      await tx
        .updateTable(t)
        .set({ claimed_until: new Date(at.getTime() + claimMs).toISOString() })
        .where('id', '=', item.id)
        .execute();
    return item;
  }) as Promise<Selectable<Database[T]> | undefined>;
}

/** Sends each item due at `now`, one after another, each claimed just before `send` is given it. */
export async function eachDue<T extends OutboxTable>(
  db: Db,
  table: T,
  now: Date,
  lockRows: boolean,
  send: (item: Selectable<Database[T]>) => Promise<void>,
  claimMs = CLAIM_MS,
  /** Checked before each item: the master is stopping. */
  stopping = () => false,
) {
  for (let after = 0; !stopping(); ) {
    const item = await claimNext(db, table, now, lockRows, after, claimMs);
    if (!item) return;
    after = (item as { id: number }).id; // both tables have a numeric id
    await send(item);
  }
}

/** Runs `pass` on each kick, one at a time; kicks during a pass coalesce into one more pass. */
export class Passes {
  private running = false;
  private again = false;
  private current?: Promise<void>;
  /** Set by stop(): a pass ends after the item it is sending, and none starts. */
  stopping = false;

  constructor(
    private readonly pass: () => Promise<void>,
    private readonly onError: (err: unknown) => void,
  ) {}

  kick() {
    if (this.stopping) return;
    if (this.running) return void (this.again = true);
    this.running = true;
    this.current = this.pass()
      .catch(this.onError)
      .finally(() => {
        this.running = false;
        if (this.again) {
          this.again = false;
          this.kick();
        }
      });
  }

  /**
   * Resolves once the pass under way has recorded the item it is sending (a send cut off at its
   * claim, at most). Closing the database under it lost that record: the item went out again.
   */
  async stop() {
    this.stopping = true;
    while (this.running) await this.current;
  }
}
