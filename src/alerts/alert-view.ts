// An alert as operators read it: its fields and the outcome of each step, the mail's final one included.
import type { Selectable } from 'kysely';
import type { Database, Db } from '../store/index.ts';
import type { Step } from './ticketing.ts';

type MailState = Pick<Selectable<Database['outbox']>, 'ticket_id' | 'state' | 'attempts' | 'last_error' | 'next_at'>;

export function alertView(a: Selectable<Database['alerts']>, mail?: MailState) {
  const steps = (JSON.parse(a.steps) as Step[]).map((s) => (s.step === 'mail' && mail ? mailStep(s, mail) : s));
  return {
    id: Number(a.id),
    source: a.source,
    alertId: a.alert_id,
    receivedAt: a.received_at,
    at: a.at,
    format: a.format,
    deviceId: a.device_id,
    failureType: a.failure_type,
    location: a.location,
    locationReported: a.location_reported,
    jobId: a.job_id,
    message: a.message,
    outcome: a.outcome,
    ticketId: a.ticket_id,
    raw: a.raw,
    steps,
  };
}

/** The step recorded `queued` when the ticket was made; what became of the mail since. */
function mailStep(s: Step, m: MailState): Step {
  if (s.outcome !== 'queued') return s;
  const tries = `${m.attempts} attempt(s)`;
  if (m.state === 'sent') return { ...s, outcome: 'sent', detail: `${s.detail ?? ''}; ${tries}` };
  if (m.state === 'failed')
    return { ...s, outcome: 'send_failed', detail: `${s.detail ?? ''}; ${tries}: ${m.last_error ?? 'refused'}` };
  if (m.attempts) return { ...s, detail: `${s.detail ?? ''}; ${tries}, next at ${m.next_at}: ${m.last_error ?? ''}` };
  return s;
}

/** Alerts with their tickets' mail looked up in one query. */
export async function alertViews(db: Db, rows: Selectable<Database['alerts']>[]) {
  const tickets = [...new Set(rows.map((r) => r.ticket_id).filter((t): t is string => !!t))];
  const mail = tickets.length
    ? await db
        .selectFrom('outbox')
        .select(['ticket_id', 'state', 'attempts', 'last_error', 'next_at'])
        .where('ticket_id', 'in', tickets)
        .orderBy('id')
        .execute()
    : [];
  const byTicket = new Map(mail.map((m) => [m.ticket_id, m]));
  return rows.map((r) => alertView(r, r.ticket_id ? byTicket.get(r.ticket_id) : undefined));
}
