// One SMTP send, and what it meant for each recipient: accepted, refused for good (5xx), or not yet.
import type { Transporter } from 'nodemailer';
import type { Faults } from '../common/faults.ts';

export interface Refusal {
  address: string;
  error: string;
}
export type Outcome = { delivered: string[]; refused: Refusal[]; temporary?: string };

export async function sendTo(
  transport: Transporter,
  from: string,
  to: string[],
  subject: string,
  text: string,
  faults: Faults,
  opts: {
    /**
     * The same for every attempt at one outbox item. SMTP cannot be exactly-once: a master killed after
     * the server took a message, before it recorded that, leaves it to be sent again; receivers that
     * drop duplicate Message-IDs (most ticket systems) then see one message.
     */
    messageId?: string;
    /** The whole send is given up after this long (a temporary failure: it is tried again). */
    deadlineMs?: number;
  } = {},
): Promise<Outcome> {
  const refused: Refusal[] = [];
  const classify = (list: { recipient?: string; responseCode?: number; message?: string }[], fallback: string[]) => {
    const temporary: string[] = [];
    for (const e of list) {
      const address = String(e.recipient ?? '');
      if ((e.responseCode ?? 0) >= 500) refused.push({ address, error: e.message ?? `refused (${e.responseCode})` });
      else temporary.push(`${address}: ${e.message ?? 'refused for now'}`);
    }
    return temporary.length ? temporary.join('; ') : list.length ? undefined : fallback.join(', ');
  };
  try {
    if (faults.take('smtp.send')) throw new Error('injected SMTP failure (smtp.send)');
    const signal = opts.deadlineMs ? AbortSignal.timeout(opts.deadlineMs) : undefined;
    const info = await transport.sendMail({ from, to, subject, text, messageId: opts.messageId, signal }).catch((e) => {
      if (!signal?.aborted) throw e;
      throw new Error(`the mail server did not answer within ${opts.deadlineMs! / 1000} s`);
    });
    const rejected =
      (info as { rejectedErrors?: { recipient?: string; responseCode?: number; message?: string }[] }).rejectedErrors ??
      [];
    const temporary = rejected.length ? classify(rejected, []) : undefined;
    const accepted = [...(info.accepted ?? [])].map(String);
    return { delivered: accepted, refused, temporary };
  } catch (e) {
    const err = e as Error & {
      responseCode?: number;
      rejectedErrors?: { recipient?: string; responseCode?: number; message?: string }[];
    };
    if (err.rejectedErrors?.length) return { delivered: [], refused, temporary: classify(err.rejectedErrors, []) };
    // A permanent answer to the message itself (e.g. 554 at DATA) is final for everyone it was for.
    if ((err.responseCode ?? 0) >= 500)
      return { delivered: [], refused: to.map((address) => ({ address, error: err.message })) };
    return { delivered: [], refused: [], temporary: err.message };
  }
}
