// The ticket e-mail: what a field technician needs, and a link that resolves the ticket.
export function ticketMail(t: {
  ticketId: string;
  summary: string;
  device: { id: string; kind: string };
  location: { code: string; name: string };
  locationReported?: string;
  failureType: string;
  message?: string;
  at: string;
  jobs: string[];
  center: string;
  resolveUrl: string;
}) {
  const lines = [
    `Ticket ${t.ticketId} for ${t.center}`,
    '',
    `Device:       ${t.device.id} (${t.device.kind})`,
    `Location:     ${t.location.name} (${t.location.code})${t.locationReported && t.locationReported !== t.location.code ? `; the alert said "${t.locationReported}"` : ''}`,
    `Failure type: ${t.failureType}`,
    `First seen:   ${t.at}`,
    `Message:      ${t.message ?? '(none)'}`,
    `Failed jobs:  ${t.jobs.length ? t.jobs.join(', ') : '(none)'}`,
    '',
    'When the fault is fixed, resolve the ticket (this also prepares the redistribution of the failed jobs):',
    t.resolveUrl,
  ];
  return { subject: `[fanout] ${t.ticketId}: ${t.summary}`, text: lines.join('\n') + '\n' };
}
