// The ticket e-mail: what a field technician needs, and a link that resolves the ticket. What the
// alert said (its message, location, jobs) comes from a device: its controls are shown escaped, and
// a message's later lines are marked, so that none can pass for a line of ours, the link above all.
import { cellSafe, quotedLines } from '../common/terminal.ts';

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
    `Location:     ${t.location.name} (${t.location.code})${t.locationReported && t.locationReported !== t.location.code ? `; the alert said "${cellSafe(t.locationReported)}"` : ''}`,
    `Failure type: ${t.failureType}`,
    `First seen:   ${t.at}`,
    `Message:      ${t.message === undefined ? '(none)' : quotedLines(t.message, '            | ')}`,
    `Failed jobs:  ${t.jobs.length ? t.jobs.map(cellSafe).join(', ') : '(none)'}`,
    '',
    'When the fault is fixed, resolve the ticket (this also prepares the redistribution of the failed jobs):',
    t.resolveUrl,
  ];
  return { subject: `[fanout] ${t.ticketId}: ${cellSafe(t.summary)}`, text: lines.join('\n') + '\n' };
}
