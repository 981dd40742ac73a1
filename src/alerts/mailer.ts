// Step 10, mail: outbox items go out over SMTP, per recipient. A recipient the server accepted is not
// mailed again; a permanent refusal (5xx) is final for that recipient; temporary failures are
// retried with capped backoff. Each item is claimed, so of several masters one sends it.
import { readFileSync } from 'node:fs';
import nodemailer, { type Transporter } from 'nodemailer';
import type { Faults } from '../common/faults.ts';
import type { Logger } from '../common/log.ts';
import type { Db } from '../store/index.ts';
import type { MailConfig } from './config.ts';
import { claimDue, Passes } from './outbox.ts';
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

  stop() {
    clearInterval(this.timer);
    this.transport.close();
  }

  /** Sends what is due now; coalesces overlapping calls. */
  kick() {
    if (this.started) this.passes.kick();
  }

  async sendDue(now = new Date()) {
    for (const item of await claimDue(this.db, 'outbox', now, this.lockRows)) {
      const attempts = item.attempts + 1;
      const firstAt = item.first_at ?? now.toISOString();
      const delivered: string[] = JSON.parse(item.delivered);
      const refused: Refusal[] = JSON.parse(item.refused);
      const remaining = (JSON.parse(item.recipients) as string[]).filter(
        (r) => !delivered.includes(r) && !refused.some((x) => x.address === r),
      );
      const r = remaining.length
        ? await sendTo(
            this.transport,
            this.cfg.from,
            remaining,
            item.subject,
            item.body,
            this.faults,
            `<${item.ticket_id}.${item.id}@fanout>`,
          )
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
      await this.db.transaction().execute(async (tx) => {
        await tx
          .updateTable('outbox')
          .set({
            state,
            attempts,
            last_error: error,
            delivered: JSON.stringify(delivered),
            refused: JSON.stringify(refused),
            first_at: firstAt,
            claimed_until: null,
            ...(state === 'pending' ? { next_at: next } : {}),
          })
          .where('id', '=', item.id)
          .execute();
        await tx
          .updateTable('tickets')
          .set({ mail_attempts: attempts, mail_error: error, updated_at: ts })
          .where('id', '=', item.ticket_id)
          .execute();
        if (state === 'sent')
          await tx
            .updateTable('tickets')
            .set({ state: 'sent' })
            .where('id', '=', item.ticket_id)
            .where('state', 'in', ['open', 'send_failed'])
            .execute();
        if (state === 'failed')
          await tx
            .updateTable('tickets')
            .set({ state: 'send_failed' })
            .where('id', '=', item.ticket_id)
            .where('state', '=', 'open')
            .execute();
      });
      if (state === 'sent') this.log.info({ ticketId: item.ticket_id, attempts, to: delivered }, 'ticket mail sent');
      else if (state === 'failed')
        this.log.error({ ticketId: item.ticket_id, attempts, error }, 'ticket mail failed for good');
      else this.log.warn({ ticketId: item.ticket_id, attempts, error, next }, 'ticket mail failed; will retry');
      this.onChange();
    }
  }
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
