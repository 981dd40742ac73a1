// An alert as operators read it: its fields and the outcome of each step.
import type { Selectable } from 'kysely';
import type { Database } from '../store/index.ts';
import type { Step } from './ticketing.ts';

export function alertView(a: Selectable<Database['alerts']>) {
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
    steps: JSON.parse(a.steps) as Step[],
  };
}
