// Integrations (DESIGN §14): ticket and job events as JSON POSTs to webhooks, signed with
// HMAC-SHA256 of the body, delivered through an outbox like mail: retried with backoff, each item
// claimed by one master at a time, given up after `retries`.
import { createHmac } from 'node:crypto';
import type { Selectable, Transaction } from 'kysely';
import { z } from 'zod';
import type { Logger } from '../common/log.ts';
import type { Database, Db } from '../store/index.ts';
import { eachDue, Passes } from './outbox.ts';

export const WEBHOOK_EVENTS = ['ticket.opened', 'ticket.resolved', 'job.complete'] as const;
export type WebhookEvent = (typeof WEBHOOK_EVENTS)[number];

export const IntegrationsConfigSchema = z
  .object({
    webhooks: z
      .array(
        z
          .object({
            url: z.string().regex(/^https?:\/\/\S+$/, 'a webhook url is http(s)://…'),
            events: z.array(z.enum(WEBHOOK_EVENTS)).default([...WEBHOOK_EVENTS]),
            secret: z.string().min(16, 'a webhook secret has at least 16 characters'),
          })
          .strict(),
      )
      .default([]),
    retries: z.number().int().min(0).max(100).default(5),
    retryBaseMs: z.number().int().min(1).max(3_600_000).default(1000),
  })
  .strict()
  .prefault({});
export type IntegrationsConfig = z.output<typeof IntegrationsConfigSchema>;

/**
 * Queues an event in the caller's transaction, beside what it announces: both are committed, or
 * neither (a master killed in between lost the event when it was queued after the commit).
 */
export type Announce = (
  tx: Db | Transaction<Database>,
  event: WebhookEvent,
  data: Record<string, unknown>,
) => Promise<void>;
export const announceNothing: Announce = async () => {};

/** `sha256=<hex>`: what a receiver computes over the raw body with the shared secret to trust a call. */
export const webhookSignature = (secret: string, body: string) =>
  `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;

export class Webhooks {
  private timer?: NodeJS.Timeout;
  private readonly passes = new Passes(
    () => this.sendDue(),
    (err) => this.log.error({ err }, 'webhook pass failed'),
  );

  constructor(
    private readonly db: Db,
    private readonly cfg: IntegrationsConfig,
    private readonly log: Logger,
    /** PostgreSQL: claim with FOR UPDATE SKIP LOCKED. */
    private readonly lockRows = false,
  ) {}

  /** Queues an event for every webhook that wants it, in `tx` (the transaction of what it announces). */
  readonly queue: Announce = async (tx, event, data) => {
    const hooks = this.cfg.webhooks.filter((h) => h.events.includes(event));
    if (!hooks.length) return;
    const at = new Date().toISOString();
    const body = JSON.stringify({ event, at, data });
    await tx
      .insertInto('webhook_outbox')
      .values(
        hooks.map((h) => ({ url: h.url, event, body, attempts: 0, next_at: at, state: 'pending', last_error: null })),
      )
      .execute();
  };

  start(pollMs = 500) {
    if (!this.cfg.webhooks.length) return;
    this.timer = setInterval(() => this.kick(), pollMs);
    this.timer.unref();
  }

  async stop() {
    clearInterval(this.timer);
    await this.passes.stop();
  }

  kick() {
    this.passes.kick();
  }

  /** Sends each delivery due at `now`, claiming it just before its send. */
  sendDue(now = new Date()) {
    return eachDue(
      this.db,
      'webhook_outbox',
      now,
      this.lockRows,
      // PostgreSQL: the connection for the record is taken before the POST, as the mailer does, so
      // no wait for the pool stands between the receiver's answer and its record.
      (item) =>
        this.lockRows ? this.db.connection().execute((conn) => this.send(conn, item)) : this.send(this.db, item),
      undefined,
      () => this.passes.stopping,
    );
  }

  private async send(db: Db, item: Selectable<Database['webhook_outbox']>) {
    const hook = this.cfg.webhooks.find((h) => h.url === item.url);
    const attempts = item.attempts + 1;
    let error: string | null = hook ? null : 'no such webhook in the config any more';
    if (hook)
      try {
        const res = await fetch(item.url, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'x-fanout-event': item.event,
            'x-fanout-delivery': String(item.id),
            'x-fanout-signature': webhookSignature(hook.secret, item.body),
          },
          body: item.body,
          signal: AbortSignal.timeout(10_000),
        });
        if (!res.ok) error = `${res.status} ${res.statusText}`;
      } catch (e) {
        error = (e as Error).message;
      }
    const state = !error ? 'sent' : attempts > this.cfg.retries || !hook ? 'failed' : 'pending';
    const next = new Date(Date.now() + Math.min(15 * 60_000, this.cfg.retryBaseMs * 2 ** (attempts - 1)));
    await db
      .updateTable('webhook_outbox')
      .set({ state, attempts, last_error: error, claimed_until: null, next_at: next.toISOString() })
      .where('id', '=', item.id)
      .execute();
    if (state === 'failed') this.log.error({ url: item.url, event: item.event, error }, 'webhook given up');
    else if (error) this.log.warn({ url: item.url, event: item.event, error }, 'webhook failed; will retry');
  }
}
