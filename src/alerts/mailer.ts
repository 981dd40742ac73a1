// Step 10, mail: outbox items go out over SMTP, per recipient. A recipient the server accepted is not
// mailed again; a permanent refusal (5xx) is final for that recipient; temporary failures are
// retried with capped backoff. Each item is claimed, so of several masters one sends it.
import { readFileSync } from 'node:fs';
import type { ExpressionBuilder, Selectable, Updateable } from 'kysely';
import nodemailer, { type Transporter } from 'nodemailer';
import type { Faults } from '../common/faults.ts';
import type { Logger } from '../common/log.ts';
import type { Database, Db } from '../store/index.ts';
import type { MailConfig } from './config.ts';
import { CLAIM_MS, eachDue, Passes } from './outbox.ts';
import { type Refusal, sendTo } from './smtp.ts';

const MAX_BACKOFF_MS = 15 * 60_000;

export class Mailer {
  private transport: Transporter;
  private timer?: NodeJS.Timeout;
  private started = false;
  private readonly passes = new Passes(
    () => this.sendDue(),
    (err) => this.log.error({ err }, 'mailer pass failed'),
  );
  onChange: () => void = () => {};

  constructor(
    private readonly db: Db,
    private readonly cfg: MailConfig,
    private readonly log: Logger,
    private readonly faults: Faults,
    /** PostgreSQL: claim with FOR UPDATE SKIP LOCKED (a SQLite file has one writer anyway). */
    private readonly lockRows = false,
    /** How long an item's claim holds; each send is cut off before it lapses. */
    private readonly claimMs = CLAIM_MS,
  ) {
    this.transport = nodemailer.createTransport({
      host: cfg.smtp.host,
      port: cfg.smtp.port,
      secure: cfg.smtp.secure,
      // A certificate that does not verify is refused unless the config says otherwise (mail.smtp.tls).
      tls: {
        rejectUnauthorized: cfg.smtp.tls.rejectUnauthorized,
        ...(cfg.smtp.tls.ca ? { ca: readFileSync(cfg.smtp.tls.ca) } : {}),
      },
      connectionTimeout: 10_000,
      greetingTimeout: 10_000,
      socketTimeout: 20_000,
    });
  }

  start(pollMs = 250) {
    this.started = true;
    this.timer = setInterval(() => this.kick(), pollMs);
    this.timer.unref();
    this.kick();
  }

  async stop() {
    clearInterval(this.timer);
    await this.passes.stop();
    this.transport.close();
  }

  /** Sends what is due now; coalesces overlapping calls. */
  kick() {
    if (this.started) this.passes.kick();
  }

  /** Sends each item due at `now`, claiming it just before its send. */
  sendDue(now = new Date()) {
    return eachDue(
      this.db,
      'outbox',
      now,
      this.lockRows,
      // PostgreSQL: the connection that records the outcome is taken before the send, so no wait for
      // the pool stands between the server's acceptance and its record. A master killed in that
      // window sends the message again (same Message-ID).
      (item) =>
        this.lockRows
          ? this.db.connection().execute((conn) => this.send(conn, item, now))
          : this.send(this.db, item, now),
      this.claimMs,
      () => this.passes.stopping,
    );
  }

  private async send(db: Db, item: Selectable<Database['outbox']>, now: Date) {
    const attempts = item.attempts + 1;
    const firstAt = item.first_at ?? now.toISOString();
    const delivered: string[] = JSON.parse(item.delivered);
    const refused: Refusal[] = JSON.parse(item.refused);
    const remaining = (JSON.parse(item.recipients) as string[]).filter(
      (r) => !delivered.includes(r) && !refused.some((x) => x.address === r),
    );
    const r = remaining.length
      ? await sendTo(this.transport, this.cfg.from, remaining, item.subject, item.body, this.faults, {
          messageId: `<${item.ticket_id}.${item.id}@fanout>`,
          // Cut off before the claim lapses: past it, another master may take the item and send it too.
          deadlineMs: this.claimMs * 0.8,
        })
      : { delivered: [], refused: [] };
    delivered.push(...r.delivered.filter((d) => remaining.includes(d)));
    refused.push(...r.refused);
    const open = remaining.filter((x) => !delivered.includes(x) && !refused.some((f) => f.address === x));
    const ts = new Date().toISOString();
    const refusedText = refused.map((f) => `${f.address}: ${f.error}`).join('; ');
    const givingUp =
      open.length > 0 && (attempts > this.cfg.retries || Date.parse(ts) - Date.parse(firstAt) > this.cfg.giveUpAfter);
    const state = open.length === 0 ? (refused.length ? 'failed' : 'sent') : givingUp ? 'failed' : 'pending';
    const error =
      state === 'sent'
        ? null
        : [r.temporary, refusedText && `refused for good: ${refusedText}`].filter(Boolean).join('; ') || null;
    const next = new Date(
      Date.now() + Math.min(MAX_BACKOFF_MS, this.cfg.retryBaseMs * 2 ** (attempts - 1)),
    ).toISOString();
    await recordSend(db, item, this.lockRows, {
      outbox: {
        state,
        attempts,
        last_error: error,
        delivered: JSON.stringify(delivered),
        refused: JSON.stringify(refused),
        first_at: firstAt,
        claimed_until: null,
        ...(state === 'pending' ? { next_at: next } : {}),
      },
      ticket: { mail_attempts: attempts, mail_error: error, updated_at: ts },
      ticketState:
        state === 'sent'
          ? { from: ['open', 'send_failed'], to: 'sent' }
          : state === 'failed'
            ? { from: ['open'], to: 'send_failed' }
            : undefined,
    });
    if (state === 'sent') this.log.info({ ticketId: item.ticket_id, attempts, to: delivered }, 'ticket mail sent');
    else if (state === 'failed')
      this.log.error({ ticketId: item.ticket_id, attempts, error }, 'ticket mail failed for good');
    else this.log.warn({ ticketId: item.ticket_id, attempts, error, next }, 'ticket mail failed; will retry');
    this.onChange();
  }
}

/**
 * An outbox item's outcome and its ticket's, together. PostgreSQL: one statement (the outbox's update
 * in a WITH), a single round trip after the server's answer. SQLite: one local transaction.
 */
async function recordSend(
  db: Db,
  item: Selectable<Database['outbox']>,
  oneStatement: boolean,
  change: {
    outbox: Updateable<Database['outbox']>;
    ticket: Updateable<Database['tickets']>;
    ticketState?: { from: string[]; to: string };
  },
) {
  const s = change.ticketState;
  const ticketSet = (eb: ExpressionBuilder<Database, 'tickets'>) => ({
    ...change.ticket,
    ...(s ? { state: eb.case().when('state', 'in', s.from).then(s.to).else(eb.ref('state')).end() } : {}),
  });
  if (oneStatement) {
    await db
      .with('o', (q) => q.updateTable('outbox').set(change.outbox).where('id', '=', item.id).returning('ticket_id'))
      .updateTable('tickets')
      .set(ticketSet)
      .where('id', 'in', (eb) => eb.selectFrom('o').select('ticket_id'))
      .execute();
    return;
  }
  await db.transaction().execute(async (tx) => {
    await tx.updateTable('outbox').set(change.outbox).where('id', '=', item.id).execute();
    await tx.updateTable('tickets').set(ticketSet).where('id', '=', item.ticket_id).execute();
  });
}

/** Queues a ticket's mail again: every recipient not yet reached, refused ones included. */
export async function requeueMail(db: Db, ticketId: string) {
  const now = new Date().toISOString();
  await db
    .updateTable('outbox')
    .set({ state: 'pending', next_at: now, attempts: 0, refused: '[]', first_at: null, claimed_until: null })
    .where('ticket_id', '=', ticketId)
    .where('state', '=', 'failed')
    .execute();
  await db
    .updateTable('tickets')
    .set({ state: 'open', updated_at: now })
    .where('id', '=', ticketId)
    .where('state', '=', 'send_failed')
    .execute();
}
