// What the mailer and the webhook sender share: items due now, each claimed by one master at a time,
// and passes that never overlap (a kick during a pass runs one more pass after it).
import type { Selectable } from 'kysely';
import type { Database, Db } from '../store/index.ts';

/** Long enough for one send; a master that dies holding a claim delays its items by no more than this. */
export const CLAIM_MS = 15_000;

type OutboxTable = 'outbox' | 'webhook_outbox';

/** Due items, claimed so another master's sender skips them meanwhile (PostgreSQL: FOR UPDATE SKIP LOCKED). */
export function claimDue<T extends OutboxTable>(
  db: Db,
  table: T,
  now: Date,
  lockRows: boolean,
): Promise<Selectable<Database[T]>[]> {
  const t = table as 'outbox'; // both tables have id, state, next_at and claimed_until
  return db.transaction().execute(async (tx) => {
    let q = tx
      .selectFrom(t)
      .selectAll()
      .where('state', '=', 'pending')
      .where('next_at', '<=', now.toISOString())
      .where((eb) => eb.or([eb('claimed_until', 'is', null), eb('claimed_until', '<', now.toISOString())]))
      .orderBy('id')
      .limit(20);
    if (lockRows) q = q.forUpdate().skipLocked();
    const items = await q.execute();
    if (items.length)
      await tx
        .updateTable(t)
        .set({ claimed_until: new Date(now.getTime() + CLAIM_MS).toISOString() })
        .where(
          'id',
          'in',
          items.map((i) => i.id),
        )
        .execute();
    return items;
  }) as Promise<Selectable<Database[T]>[]>;
}

/** Runs `pass` on each kick, one at a time; kicks during a pass coalesce into one more pass. */
export class Passes {
  private running = false;
  private again = false;

  constructor(
    private readonly pass: () => Promise<void>,
    private readonly onError: (err: unknown) => void,
  ) {}

  kick() {
    if (this.running) return void (this.again = true);
    this.running = true;
    this.pass()
      .catch(this.onError)
      .finally(() => {
        this.running = false;
        if (this.again) {
          this.again = false;
          this.kick();
        }
      });
  }
}
