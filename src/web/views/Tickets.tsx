import { State, Table, time } from './common.tsx';

export function Tickets({ tickets, onResolve }: { tickets: any[]; onResolve: (id: string) => void }) {
  return (
    <section>
      <h2>Tickets</h2>
      <Table
        rows={tickets}
        rowKey={(t) => t.id}
        empty="No tickets."
        cols={[
          ['Ticket', (t) => t.id],
          ['Device', (t) => t.deviceId],
          ['Type', (t) => t.failureType],
          ['State', (t) => <State s={t.state} />],
          ['Center', (t) => t.centerId ?? '-'],
          ['Location', (t) => t.location],
          ['Jobs', (t) => t.jobs.join(', ')],
          ['Mail', (t) => `${t.mailAttempts} attempt(s)${t.mailError ? `: ${t.mailError}` : ''}`],
          ['Opened', (t) => time(t.createdAt)],
          [
            '',
            (t) =>
              t.state !== 'resolved' ? (
                <button type="button" onClick={() => onResolve(t.id)}>
                  Resolve
                </button>
              ) : null,
          ],
        ]}
      />
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
          ['Job', (f) => f.jobId],
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
