import { DeviceText, State } from './common.tsx';

/** Rollouts in rings: each ring's progress; a halted one says why and offers Resume and Abort. */
export function Rollouts({
  rollouts,
  canDecide,
  onAct,
}: {
  rollouts: any[];
  canDecide: boolean;
  onAct: (id: string, verb: 'resume' | 'abort') => void;
}) {
  if (!rollouts.length) return null;
  return (
    <section className="rollouts">
      <h2>Rollouts</h2>
      {rollouts.map((r) => (
        <article key={r.jobId} className="rollout" data-rollout={r.jobId}>
          <h3>
            {r.jobId} <State s={r.state} /> <small>{r.packages.join(', ')}</small>
          </h3>
          {r.state === 'halted' && (
            <div className="halted" role="alert">
              <strong>Halted.</strong> <DeviceText text={r.reason} />
              <div className="actions">
                <button type="button" disabled={!canDecide} onClick={() => onAct(r.jobId, 'resume')}>
                  Resume
                </button>
                <button type="button" className="reject" disabled={!canDecide} onClick={() => onAct(r.jobId, 'abort')}>
                  Abort
                </button>
              </div>
            </div>
          )}
          <ol className="rings">
            {r.rings.map((g: any) => {
              const done = g.counts.installed ?? 0;
              const failed = g.counts.failed ?? 0;
              const n = g.deviceCount ?? g.devices.length;
              return (
                <li key={g.ring}>
                  <span className="ring-label">
                    ring {g.ring} ({g.percent}%, {n})
                  </span>
                  <div className="progress" role="img" aria-label={`ring ${g.ring}: ${done} of ${n} installed`}>
                    <div className="ok" style={{ width: `${(100 * done) / Math.max(1, n)}%` }} />
                    <div className="bad" style={{ width: `${(100 * failed) / Math.max(1, n)}%` }} />
                    <span>{g.jobId ? `${done}/${n} installed${failed ? `, ${failed} failed` : ''}` : 'waiting'}</span>
                  </div>
                </li>
              );
            })}
          </ol>
        </article>
      ))}
    </section>
  );
}
