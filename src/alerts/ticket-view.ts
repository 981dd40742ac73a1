// A ticket as the API, the CLI and webhooks show it.

export const ticketView = (t: {
  id: string;
  device_id: string;
  failure_type: string;
  state: string;
  center_id: string | null;
  location: string | null;
  mail_attempts: number;
  mail_error: string | null;
  jobs: string;
  alert_ids: string;
  summary: string;
  created_at: string;
  updated_at: string;
}) => ({
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
