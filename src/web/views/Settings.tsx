import { useState } from 'react';
import { Table, time } from './common.tsx';

export function Outages({ outages, onAdd }: { outages: any[]; onAdd: (o: unknown) => void }) {
  const [target, setTarget] = useState('');
  const [hours, setHours] = useState('4');
  const [reason, setReason] = useState('');
  const now = Date.now();
  return (
    <section>
      <h2>Outages</h2>
      <form
        className="inline"
        onSubmit={(e) => {
          e.preventDefault();
          const isLocation = target.startsWith('location:');
          onAdd({
            ...(isLocation ? { location: target.slice(9) } : { deviceId: target }),
            until: new Date(Date.now() + Number(hours) * 3_600_000).toISOString(),
            reason,
          });
          setTarget('');
          setReason('');
        }}
      >
        <label>
          Device or location:CODE <input value={target} onChange={(e) => setTarget(e.target.value)} required />
        </label>
        <label>
          Hours <input type="number" min="1" value={hours} onChange={(e) => setHours(e.target.value)} />
        </label>
        <label>
          Reason <input value={reason} onChange={(e) => setReason(e.target.value)} />
        </label>
        <button type="submit">Add outage</button>
      </form>
      <Table
        rows={outages}
        rowKey={(o) => o.id}
        empty="No outages."
        cols={[
          ['Outage', (o) => o.id],
          ['Device', (o) => o.deviceId ?? ''],
          ['Location', (o) => o.location ?? ''],
          ['From', (o) => time(o.from)],
          ['Until', (o) => time(o.until)],
          ['Active', (o) => (Date.parse(o.from) <= now && now < Date.parse(o.until) ? 'yes' : 'no')],
          ['Reason', (o) => o.reason],
        ]}
      />
    </section>
  );
}

export function Thresholds({ thresholds }: { thresholds: any }) {
  const types = Object.entries(thresholds.failureTypes).map(([type, t]: [string, any]) => ({
    type,
    threshold: t.threshold ?? thresholds.defaultThreshold,
    patterns: t.patterns,
  }));
  return (
    <section>
      <h2>Thresholds</h2>
      <p>
        Window {thresholds.window / 3_600_000} h; default threshold {thresholds.defaultThreshold}. The Nth alert of a
        type for a device inside the window makes a ticket.
      </p>
      <Table
        rows={types}
        rowKey={(t) => t.type}
        empty="No failure types."
        cols={[
          ['Failure type', (t) => t.type],
          ['Threshold', (t) => t.threshold],
          ['Patterns', (t) => t.patterns.join(' | ')],
        ]}
      />
      <h3>Device overrides</h3>
      <Table
        rows={thresholds.deviceOverrides}
        rowKey={(o: any) => `${o.deviceId}/${o.failureType}/${o.source}`}
        empty="No overrides."
        cols={[
          ['Device', (o: any) => o.deviceId],
          ['Failure type', (o: any) => o.failureType],
          ['Threshold', (o: any) => o.threshold],
          ['Set in', (o: any) => o.source],
        ]}
      />
    </section>
  );
}
