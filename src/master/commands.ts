// The commands a relay is given: long-polled by the relay, acknowledged once on its disk.
import type { EventEmitter } from 'node:events';
import { DistributionCommand } from '../protocol/types.ts';
import { type Db, generationsOf } from '../store/index.ts';
import { commandSignedNow, type SigningKeys } from './resign.ts';

/**
 * Queues a command for its relay, in the caller's transaction: the row the relay's long-poll reads
 * (its `seq` is the row's, given on reading).
 */
export function queueCommand(db: Db, c: Omit<DistributionCommand, 'seq'>) {
  return db
    .insertInto('commands')
    .values({
      command_id: c.commandId,
      job_id: c.jobId,
      relay_id: c.relayId,
      kind: c.kind,
      body: JSON.stringify(c),
      issued_at: c.issuedAt,
      acked_at: null,
    })
    .execute();
}

export class Commands {
  constructor(
    private readonly db: Db,
    /** Jobs' events: `commands:<relayId>` wakes that relay's long-poll, `commands:*` every relay's. */
    private readonly events: EventEmitter,
    /** The signing key in force, and every key it replaced. */
    private readonly key: SigningKeys,
  ) {}

  /**
   * The commands a relay has not acknowledged yet (DESIGN §15): delivery by acknowledgement, never by
   * "sequence greater than the last seen", so a transaction that commits late is not skipped, and a
   * relay with an empty data folder gets only what is still open for it. Waits up to waitMs for one,
   * or for the inventory to change, and answers at once when the relay's copy of the inventory
   * (`inventory`, its generation) is old: the relay asks for its devices again.
   */
  async commandsFor(relayId: string, waitMs: number, inventory?: number) {
    const read = async () => {
      const [rows, { inventory: generation, 'relay-addresses': addresses }] = await Promise.all([
        this.db
          .selectFrom('commands')
          .select(['seq', 'body'])
          .where('relay_id', '=', relayId)
          .where('acked_at', 'is', null)
          .orderBy('seq')
          .limit(100)
          .execute(),
        generationsOf(this.db, ['inventory', 'relay-addresses']),
      ]);
      // Signed when queued: by the key in force now, for a relay enrolled afresh since a rotation.
      const commands = rows.map((r) =>
        commandSignedNow(this.key, DistributionCommand.parse({ ...JSON.parse(r.body), seq: Number(r.seq) })),
      );
      // Addresses do not wake the long-poll: the relay hears at its next answer (20 s at most).
      return { commands, inventory: generation, addresses };
    };
    // Listening before the first read: a command or an import that commits meanwhile still wakes it.
    let done = () => {};
    const woken = new Promise<void>((resolve) => {
      const timer = setTimeout(() => done(), waitMs);
      done = () => {
        clearTimeout(timer);
        this.events.off(`commands:${relayId}`, done);
        this.events.off('commands:*', done);
        resolve();
      };
      this.events.on(`commands:${relayId}`, done);
      this.events.on('commands:*', done);
    });
    const now = await read();
    if (now.commands.length || waitMs <= 0 || (inventory !== undefined && inventory !== now.inventory)) {
      done();
      return now;
    }
    await woken;
    return read();
  }

  async ack(relayId: string, commandIds: string[]) {
    if (!commandIds.length) return;
    await this.db
      .updateTable('commands')
      .set({ acked_at: new Date().toISOString() })
      .where('relay_id', '=', relayId)
      .where('command_id', 'in', commandIds)
      .where('acked_at', 'is', null)
      .execute();
  }
}
