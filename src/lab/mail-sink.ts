// A real SMTP server on loopback that keeps what it receives: the lab's mail sink, and the tests'.
import { setTimeout as sleep } from 'node:timers/promises';
import { SMTPServer } from 'smtp-server';

export interface SunkMail {
  from: string;
  to: string[];
  subject: string;
  messageId: string;
  text: string;
  at: string;
}

export class MailSink {
  readonly messages: SunkMail[] = [];
  /** Refuse the next N messages with a 451 (try again later); -1 refuses all. */
  refuse = 0;
  attempts = 0;
  /** Messages whose data the server began to receive (answered or not yet). */
  receiving = 0;
  /** How long the server takes to answer a message it received (a slow or distant relay MTA). */
  answerDelayMs = 0;
  /** Addresses refused at RCPT TO (550), as a server refuses an unknown mailbox. */
  readonly refuseRecipients = new Set<string>();
  onMail: (m: SunkMail) => void = () => {};
  private server: SMTPServer;
  port = 0;

  constructor() {
    this.server = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS', 'AUTH'],
      logger: false,
      onRcptTo: (address, _session, callback) => {
        if (this.refuseRecipients.has(address.address))
          return callback(Object.assign(new Error(`no such mailbox: ${address.address}`), { responseCode: 550 }));
        callback();
      },
      onData: (stream, session, callback) => {
        this.receiving++;
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', async () => {
          if (this.answerDelayMs) await sleep(this.answerDelayMs);
          this.attempts++;
          if (this.refuse !== 0) {
            if (this.refuse > 0) this.refuse--;
            const err = Object.assign(new Error('mailbox busy, try again later'), { responseCode: 451 });
            return callback(err);
          }
          const raw = Buffer.concat(chunks).toString('utf8');
          const [head, ...body] = raw.split(/\r?\n\r?\n/);
          const subject = /^Subject: (.*(?:\r?\n[ \t].*)*)/im.exec(head)?.[1].replace(/\r?\n[ \t]/g, ' ') ?? '';
          const text = body
            .join('\n\n')
            .replace(/=\r?\n/g, '')
            .replace(/=([0-9A-F]{2})/g, (_m, h) => String.fromCharCode(parseInt(h, 16)));
          const m = {
            messageId: /^Message-ID: (.*)$/im.exec(head)?.[1].trim() ?? '',
            from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
            to: session.envelope.rcptTo.map((r) => r.address),
            subject,
            text,
            at: new Date().toISOString(),
          };
          this.messages.push(m);
          this.onMail(m);
          callback();
        });
      },
    });
  }

  async listen(port = 0, host = '127.0.0.1') {
    await new Promise<void>((res, rej) => {
      this.server.once('error', rej);
      this.server.listen(port, host, () => res());
    });
    this.port = (this.server.server.address() as { port: number }).port;
    return this.port;
  }

  close() {
    return new Promise<void>((res) => this.server.close(() => res()));
  }
}
