// Step 10, mail: send outbox items over SMTP; done only when every recipient was accepted.
import { readFileSync } from 'node:fs';
import nodemailer, { type Transporter } from 'nodemailer';
import type { Faults } from '../common/faults.ts';
import type { Logger } from '../common/log.ts';
import type { Db } from '../store/index.ts';
import type { MailConfig } from './config.ts';

export class Mailer {
  private transport: Transporter;
  private timer?: NodeJS.Timeout;
  private running = false;
  private again = false;
  private started = false;
  onChange: () => void = () => {};

  constructor(
    private readonly db: Db,
    private readonly cfg: MailConfig,
    private readonly log: Logger,
    private readonly faults: Faults,
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
    if (!this.started) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    this.sendDue()
      .catch((err) => this.log.error({ err }, 'mailer pass failed'))
      .finally(() => {
        this.running = false;
        if (this.again) {
          this.again = false;
          this.kick();
        }
      });
  }

  async sendDue(now = new Date()) {
    const due = await this.db
      .selectFrom('outbox')
      .selectAll()
      .where('state', '=', 'pending')
      .where('next_at', '<=', now.toISOString())
      .orderBy('id')
      .limit(20)
      .execute();
    for (const item of due) {
      const attempts = item.attempts + 1;
      const recipients: string[] = JSON.parse(item.recipients);
      let error: string | null = null;
      try {
        if (this.faults.take('smtp.send')) throw new Error('injected SMTP failure (smtp.send)');
        const info = await this.transport.sendMail({
          from: this.cfg.from,
          to: recipients,
          subject: item.subject,
          text: item.body,
        });
        const rejected = [...(info.rejected ?? [])].map(String);
        if (rejected.length) throw new Error(`server refused ${rejected.join(', ')}`);
      } catch (e) {
        error = (e as Error).message;
      }
      const ts = new Date().toISOString();
      if (!error) {
        await this.db.transaction().execute(async (tx) => {
          await tx
            .updateTable('outbox')
            .set({ state: 'sent', attempts, last_error: null })
            .where('id', '=', item.id)
            .execute();
          await tx
            .updateTable('tickets')
            .set({ mail_attempts: attempts, mail_error: null, updated_at: ts })
            .where('id', '=', item.ticket_id)
            .execute();
          await tx
            .updateTable('tickets')
            .set({ state: 'sent' })
            .where('id', '=', item.ticket_id)
            .where('state', 'in', ['open', 'send_failed'])
            .execute();
        });
        this.log.info({ ticketId: item.ticket_id, attempts, to: recipients }, 'ticket mail sent');
      } else if (attempts > this.cfg.retries) {
        await this.db.transaction().execute(async (tx) => {
          await tx
            .updateTable('outbox')
            .set({ state: 'failed', attempts, last_error: error })
            .where('id', '=', item.id)
            .execute();
          await tx
            .updateTable('tickets')
            .set({ mail_attempts: attempts, mail_error: error, updated_at: ts })
            .where('id', '=', item.ticket_id)
            .execute();
          await tx
            .updateTable('tickets')
            .set({ state: 'send_failed' })
            .where('id', '=', item.ticket_id)
            .where('state', '=', 'open')
            .execute();
        });
        this.log.error({ ticketId: item.ticket_id, attempts, error }, 'ticket mail failed for good');
      } else {
        const next = new Date(Date.now() + this.cfg.retryBaseMs * 2 ** (attempts - 1)).toISOString();
        await this.db.transaction().execute(async (tx) => {
          await tx
            .updateTable('outbox')
            .set({ attempts, next_at: next, last_error: error })
            .where('id', '=', item.id)
            .execute();
          await tx
            .updateTable('tickets')
            .set({ mail_attempts: attempts, mail_error: error, updated_at: ts })
            .where('id', '=', item.ticket_id)
            .execute();
        });
        this.log.warn({ ticketId: item.ticket_id, attempts, error, next }, 'ticket mail failed; will retry');
      }
      this.onChange();
    }
  }
}
