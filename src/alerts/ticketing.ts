// Step 9 of the alert center: a new ticket with its mail (its failed-distribution record is batch.ts's).
import type { Transaction } from 'kysely';
import { newId } from '../protocol/crypto.ts';
import type { Database } from '../store/index.ts';
import type { IncomingAlert } from './incoming.ts';
import type { Locations } from './location.ts';
import { ticketMail } from './mail-text.ts';

type Tx = Transaction<Database>;

/**
 * The most jobs a ticket lists. An endpoint may name any job in its alerts: without a bound, each
 * new one rewrote a longer list, and 15,000 such alerts slowed every intake to 42 alerts a second.
 */
export const MAX_TICKET_JOBS = 100;

export interface Step {
  step: string;
  outcome: string;
  detail?: string;
}

export async function createTicket(
  tx: Tx,
  resolveLink: (ticketId: string) => string,
  x: {
    device: Database['devices'];
    failureType: string;
    location: string;
    locationReported?: string;
    locations: Locations;
    a: IncomingAlert;
    steps: Step[];
  },
) {
  const now = new Date().toISOString();
  const id = newId('t');
  const loc = x.locations.get(x.location)!;
  const center = await tx.selectFrom('centers').selectAll().where('id', '=', loc.center).executeTakeFirst();
  const failedJobs = await tx
    .selectFrom('failed_distributions')
    .select('job_id')
    .where('relay_id', '=', x.device.id)
    .where('state', '!=', 'resolved')
    .orderBy('id')
    .limit(MAX_TICKET_JOBS)
    .execute();
  const jobs = [...new Set([...(x.a.jobId ? [x.a.jobId] : []), ...failedJobs.map((f) => f.job_id)])].slice(
    0,
    MAX_TICKET_JOBS,
  );
  const summary = `${x.failureType} on ${x.device.id} at ${loc.name} (${loc.code})`;
  await tx
    .insertInto('tickets')
    .values({
      id,
      device_id: x.device.id,
      failure_type: x.failureType,
      state: 'open',
      center_id: center?.id ?? null,
      location: x.location,
      alert_ids: JSON.stringify([x.a.alertId]),
      jobs: JSON.stringify(jobs),
      summary,
      created_at: now,
      updated_at: now,
      mail_attempts: 0,
      mail_error: null,
      resolve_key: '', // links are signed, not stored (links.ts)
    })
    .execute();
  x.steps.push({
    step: 'ticket',
    outcome: id,
    detail: `${summary}; center ${center?.id ?? 'none'}${jobs.length ? `; failed jobs ${jobs.join(', ')}` : ''}`,
  });
  if (!center) {
    x.steps.push({ step: 'mail', outcome: 'no center', detail: `location ${x.location} has no maintenance center` });
    return id;
  }
  const recipients: string[] = JSON.parse(center.email);
  const mail = ticketMail({
    ticketId: id,
    summary,
    device: x.device,
    location: loc,
    locationReported: x.locationReported,
    failureType: x.failureType,
    message: x.a.message,
    at: x.a.at,
    jobs,
    center: center.name,
    resolveUrl: resolveLink(id),
  });
  await tx
    .insertInto('outbox')
    .values({
      ticket_id: id,
      recipients: JSON.stringify(recipients),
      subject: mail.subject,
      body: mail.text,
      attempts: 0,
      next_at: now,
      state: 'pending',
      last_error: null,
    })
    .execute();
  x.steps.push({ step: 'mail', outcome: 'queued', detail: `to ${recipients.join(', ')} (${center.name})` });
  return id;
}
