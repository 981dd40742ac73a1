// Relays as the master sees them: heartbeats, RELAY_DOWN, and a client for each relay's admin API.

import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../common/log.ts';
import { every, type Ticker } from '../common/ticker.ts';
import { Client, type ClientTls } from '../protocol/client.ts';
import { FanoutError } from '../protocol/errors.ts';
import { masterRequestHeaders } from '../protocol/master-request.ts';
import { bumpGeneration, type Db, oneOf, perStatement } from '../store/index.ts';

export type RaiseAlert = (a: {
  source: string;
  alertId: string;
  deviceId: string;
  failureType: string;
  message: string;
  at: string;
  jobId?: string;
  relayId?: string;
}) => Promise<unknown>;

/** How long heartbeats gather before they are written together. */
const HEARTBEAT_BATCH_MS = 200;

export class RelayRegistry {
  private ticker?: Ticker;
  /** Heartbeats waiting to be written: each relay's address (if it gave one), and their promise. */
  private batch?: { relays: Map<string, string | undefined>; written: Promise<void> };
  /** Called on heartbeats (at most every 10 s per relay): the master asks for plans it still wants. */
  onHeartbeat: (relayId: string) => Promise<void> = async () => {};
  /** Which of these relays owe plans: only for those is the heartbeat's claim (a write) taken. */
  owing: (relayIds: readonly string[]) => Promise<Set<string>> = async (ids) => new Set(ids);
  constructor(
    private readonly db: Db,
    private readonly log: Logger,
    private readonly heartbeatTimeoutMs: number,
    private readonly raise: RaiseAlert,
    private readonly signingKey: () => string,
    private readonly tls?: ClientTls,
    /** Periodic work shared by masters on one database is done by the one that claims it (Store.claim). */
    private readonly claim: (name: string, ms: number) => Promise<boolean> = async () => true,
  ) {}

  /**
   * Resolves once the heartbeat is written. Heartbeats are written together, every
   * HEARTBEAT_BATCH_MS: a thousand relays each every 5 s made 200 transactions (and fsyncs) a second.
   */
  heartbeat(relayId: string, url?: string): Promise<void> {
    // Only an http(s) address of the relay's own; the master sends it signed requests, never a secret.
    if (url && !/^https?:\/\/[^/\s]+\/?$/.test(url)) url = undefined;
    if (!this.batch) {
      const relays = new Map<string, string | undefined>();
      const written = sleep(HEARTBEAT_BATCH_MS).then(() => {
        this.batch = undefined;
        return this.writeHeartbeats(relays);
      });
      this.batch = { relays, written };
    }
    // The latest address given wins; a heartbeat without one keeps the one given before it.
    this.batch.relays.set(relayId, url ?? this.batch.relays.get(relayId));
    return this.batch.written;
  }

  private async writeHeartbeats(relays: Map<string, string | undefined>) {
    const now = new Date().toISOString();
    const ids = [...relays.keys()];
    const prev = new Map(
      (
        await this.db
          .selectFrom('relays')
          .select(['id', 'down_since', 'url'])
          .where(oneOf(this.db, 'id', ids))
          .execute()
      ).map((r) => [r.id, r]),
    );
    for (const part of perStatement(ids))
      await this.db
        .insertInto('relays')
        .values(
          part.map((id) => ({
            id,
            url: relays.get(id) ?? null,
            admin_token: null,
            last_heartbeat: now,
            down_since: null,
          })),
        )
        .onConflict((oc) =>
          oc.column('id').doUpdateSet((eb) => ({
            url: eb.fn.coalesce(eb.ref('excluded.url'), eb.ref('relays.url')),
            last_heartbeat: now,
            down_since: null,
          })),
        )
        .execute();
    // After the write: a relay that reads the new generation then reads the new address.
    if (ids.some((id) => relays.get(id) && prev.get(id)?.url !== relays.get(id)))
      await bumpGeneration(this.db, 'relay-addresses');
    for (const relayId of ids) if (prev.get(relayId)?.down_since) this.log.info({ relayId }, 'relay is back');
    // Plans wanted from these relays (their tickets resolved while they could not be asked) are asked for now.
    void this.owing(ids)
      .then((owed) =>
        Promise.all(
          [...owed].map((relayId) =>
            this.claim(`ask-wanted ${relayId}`, 10_000)
              .then((mine) => (mine ? this.onHeartbeat(relayId) : undefined))
              .catch((err) =>
                this.log.warn({ err: (err as Error).message, relayId }, 'asking for wanted plans failed'),
              ),
          ),
        ),
      )
      .catch((err) => this.log.warn({ err: (err as Error).message }, 'reading the plans relays owe failed'));
  }

  /** Raises RELAY_DOWN once per outage for every relay whose heartbeats stopped. */
  async check(now = Date.now()) {
    const cutoff = new Date(now - this.heartbeatTimeoutMs).toISOString();
    const silent = await this.db
      .selectFrom('relays')
      .select(['id', 'last_heartbeat'])
      .where('down_since', 'is', null)
      .where('last_heartbeat', '<', cutoff)
      .execute();
    for (const r of silent) {
      const at = new Date(now).toISOString();
      // Conditional: of masters checking at once, one marks the outage and raises it.
      const marked = await this.db
        .updateTable('relays')
        .set({ down_since: at })
        .where('id', '=', r.id)
        .where('down_since', 'is', null)
        .where('last_heartbeat', '=', r.last_heartbeat)
        .executeTakeFirst();
      if (!Number(marked.numUpdatedRows)) continue;
      this.log.warn({ relayId: r.id, lastHeartbeat: r.last_heartbeat }, 'relay missed its heartbeats');
      await this.raise({
        source: 'master',
        alertId: `relay-down-${r.id}-${r.last_heartbeat}`,
        deviceId: r.id,
        failureType: 'RELAY_DOWN',
        message: `no heartbeat since ${r.last_heartbeat}`,
        at,
      });
    }
  }

  start(intervalMs = Math.max(1000, Math.floor(this.heartbeatTimeoutMs / 3))) {
    const tick = async () => {
      // Held for two intervals and renewed each one: if its holder dies, another master takes over.
      if (await this.claim('relay-down check', 2 * intervalMs)) await this.check();
    };
    this.ticker = every(intervalMs, tick, (err) => this.log.error({ err }, 'heartbeat check failed'));
  }

  async stop() {
    await this.ticker?.stop();
  }

  async list() {
    return this.db.selectFrom('relays').select(['id', 'url', 'last_heartbeat', 'down_since']).orderBy('id').execute();
  }

  /** A client for a relay's admin API; its requests are signed with the master's key, no relay secret is kept. */
  async adminClient(relayId: string): Promise<Client> {
    const r = await this.db.selectFrom('relays').select(['url']).where('id', '=', relayId).executeTakeFirst();
    if (!r?.url)
      throw new FanoutError('FANOUT_ERR_RELAY_UNREACHABLE', {
        relayId,
        why: 'it has not reported its address yet; is it running?',
      });
    return new Client({
      baseUrl: r.url,
      token: '',
      timeoutMs: 30_000,
      tls: this.tls,
      authorize: (method, path, body) => masterRequestHeaders(this.signingKey(), relayId, method, path, body),
    });
  }
}
