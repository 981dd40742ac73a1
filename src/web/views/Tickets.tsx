import { useState } from 'react';
import { DeviceText, State, Table, time } from './common.tsx';

export function Tickets({
  tickets,
  outbox,
  canResolve,
  onResolve,
}: {
  tickets: any[];
  outbox: any[];
  canResolve: boolean;
  onResolve: (id: string) => void;
}) {
  const [open, setOpen] = useState<string | null>(null);
  const shown = open ? tickets.find((t) => t.id === open) : undefined;
  const mail = shown ? outbox.find((o) => o.ticketId === shown.id) : undefined;
  return (
    <section>
      <h2>Tickets</h2>
      <Table
        rows={tickets}
        rowKey={(t) => t.id}
        empty="No tickets."
        cols={[
          [
            'Ticket',
            (t) => (
              <button type="button" className="link-dark" onClick={() => setOpen(open === t.id ? null : t.id)}>
                {t.id}
              </button>
            ),
          ],
          ['Device', (t) => t.deviceId],
          ['Type', (t) => t.failureType],
          ['State', (t) => <State s={t.state} />],
          ['What', (t) => <span className="msg">{t.summary}</span>],
          ['Jobs', (t) => <DeviceText text={t.jobs.join(', ')} />],
          ['Mail', (t) => `${t.mailAttempts} attempt(s)${t.mailError ? `: ${t.mailError}` : ''}`],
          ['Opened', (t) => time(t.createdAt)],
          [
            '',
            (t) =>
              t.state !== 'resolved' ? (
                <button
                  type="button"
                  disabled={!canResolve}
                  title={canResolve ? 'the fault is fixed: ask the relay for a plan' : 'viewers only read'}
                  onClick={() => onResolve(t.id)}
                >
                  Resolve
                </button>
              ) : null,
          ],
        ]}
      />
      {shown && (
        <article className="ticket-detail" aria-label={`ticket ${shown.id}`}>
          <h3>
            {shown.id} <State s={shown.state} />
          </h3>
          <p>{shown.summary}</p>
          {mail ? (
            <>
              <p className="muted">
                Mail to {mail.recipients.join(', ')}: {mail.subject} ({mail.state}, {mail.attempts} attempt(s))
              </p>
              <pre className="mail-text">{mail.body}</pre>
            </>
          ) : (
            <p className="muted">No mail for this ticket.</p>
          )}
        </article>
      )}
    </section>
  );
}

export function Failed({ failed }: { failed: any[] }) {
  return (
    <section>
      <h2>Failed distributions</h2>
      <Table
        rows={failed}
        rowKey={(f) => String(f.id)}
        empty="No failed distributions."
        cols={[
          ['#', (f) => f.id],
          ['Relay', (f) => f.relayId],
          ['Job', (f) => <DeviceText text={f.jobId} />],
          ['Type', (f) => f.failureType],
          ['State', (f) => <State s={f.state} />],
          ['Alerts', (f) => f.alertCount],
          ['Ticket', (f) => f.ticketId ?? '-'],
          ['First seen', (f) => time(f.firstSeen)],
          ['Last seen', (f) => time(f.lastSeen)],
        ]}
      />
    </section>
  );
}

export function Mail({ outbox }: { outbox: any[] }) {
  return (
    <section>
      <h2>Mail delivery</h2>
      <Table
        rows={outbox}
        rowKey={(m) => String(m.id)}
        empty="No mail yet."
        cols={[
          ['#', (m) => m.id],
          ['Ticket', (m) => m.ticketId],
          ['To', (m) => m.recipients.join(', ')],
          ['Subject', (m) => m.subject],
          ['State', (m) => <State s={m.state} />],
          ['Attempts', (m) => m.attempts],
          ['Last error', (m) => m.lastError ?? ''],
          ['Next try', (m) => (m.state === 'pending' ? time(m.nextAt) : '')],
        ]}
      />
    </section>
  );
}
