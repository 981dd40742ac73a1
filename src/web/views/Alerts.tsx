import { useState } from 'react';
import { DeviceText, State, time } from './common.tsx';

export function Alerts({ alerts }: { alerts: any[] }) {
  const [open, setOpen] = useState<number | null>(null);
  if (!alerts.length) return <p className="empty">No alerts.</p>;
  return (
    <section>
      <h2>Alerts</h2>
      <table className="alerts">
        <thead>
          <tr>
            <th>#</th>
            <th>Time</th>
            <th>Device</th>
            <th>Type</th>
            <th>Location</th>
            <th>Outcome</th>
            <th>Ticket</th>
          </tr>
        </thead>
        <tbody>
          {alerts.map((a) => [
            <tr
              key={a.id}
              className="clickable"
              onClick={() => setOpen(open === a.id ? null : a.id)}
              aria-expanded={open === a.id}
            >
              <td>{a.id}</td>
              <td>{time(a.at)}</td>
              <td>{a.deviceId == null ? '-' : <DeviceText text={a.deviceId} />}</td>
              <td>{a.failureType ?? '-'}</td>
              <td>
                {a.location ?? '-'}
                {a.locationReported && a.locationReported !== a.location ? (
                  <small>
                    {' '}
                    (said “<DeviceText text={a.locationReported} />
                    ”)
                  </small>
                ) : null}
              </td>
              <td>
                <State s={a.outcome} />
              </td>
              <td>{a.ticketId ?? ''}</td>
            </tr>,
            open === a.id && (
              <tr key={`${a.id}-steps`} className="steps">
                <td colSpan={7}>
                  {a.message && (
                    <p className="msg">
                      <DeviceText text={a.message} />
                    </p>
                  )}
                  <ol>
                    {a.steps.map((s: any) => (
                      <li key={s.step}>
                        <b>{s.step}</b> <State s={s.outcome} /> <DeviceText className="detail" text={s.detail} />
                      </li>
                    ))}
                  </ol>
                </td>
              </tr>
            ),
          ])}
        </tbody>
      </table>
    </section>
  );
}
