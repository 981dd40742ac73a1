// A ticket as the API, the CLI and webhooks show it.
import type { Selectable } from 'kysely';
import type { Database } from '../store/index.ts';

export const ticketView = (t: Omit<Selectable<Database['tickets']>, 'resolve_key'>) => ({
  id: t.id,
  deviceId: t.device_id,
  failureType: t.failure_type,
  state: t.state,
  centerId: t.center_id,
  location: t.location,
  mailAttempts: t.mail_attempts,
  mailError: t.mail_error,
  jobs: JSON.parse(t.jobs) as string[],
  alertIds: JSON.parse(t.alert_ids) as string[],
  summary: t.summary,
  createdAt: t.created_at,
  updatedAt: t.updated_at,
});
