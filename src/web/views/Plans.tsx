import { useState } from 'react';
import { State } from './common.tsx';

const bytes = (n: number) =>
  n < 1024 ? `${n} B` : n < 1024 ** 2 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / 1024 ** 2).toFixed(1)} MiB`;

// The dashboard asks for summaries: each list's first names, and how many there are.
export const recipients = (p: any): number => p.distributionCount ?? p.distributionList.length;
const installed = (p: any): number => p.original.installedCount ?? p.original.installed.length;
const names = (shown: string[], all: number, planId: string) =>
  shown.join(', ') +
  (all > shown.length ? ` and ${all - shown.length} more (fanout plan show ${planId} names all)` : '');

export function Plans({
  plans,
  canDecide,
  onDecide,
}: {
  plans: any[];
  canDecide: boolean;
  onDecide: (id: string, d: 'approve' | 'reject') => void;
}) {
  const [asking, setAsking] = useState<{ id: string; d: 'approve' | 'reject' } | null>(null);
  if (!plans.length)
    return <p className="empty">No redistribution plans. Resolving a ticket asks the relay for one.</p>;
  return (
    <section>
      <h2>Redistribution plans</h2>
      {plans.map((p) => (
        <article key={p.planId} className="plan" data-plan={p.planId}>
          <h3>
            {p.planId} <State s={p.state} />{' '}
            <small>
              job {p.jobId} on {p.relayId}
            </small>
          </h3>
          <dl>
            <dt>Packages</dt>
            <dd>{p.packages.map((x: any) => `${x.name}@${x.version}`).join(', ')}</dd>
            <dt>Recipients ({recipients(p)})</dt>
            <dd>{names(p.distributionList, recipients(p), p.planId)}</dd>
            <dt>Against the original</dt>
            <dd>
              {p.original.targets ?? p.original.distributionList.length} target(s); {installed(p)} already installed and
              left out{installed(p) ? `: ${names(p.original.installed, installed(p), p.planId)}` : ''}
            </dd>
            {p.original.movedOn?.length > 0 && (
              <>
                <dt>Moved on</dt>
                <dd className="moved-on">
                  {p.original.movedOnCount ?? p.original.movedOn.length} target(s) left out: a later job installed a
                  newer version (the endpoint would refuse this one):{' '}
                  {p.original.movedOn.map((m: any) => `${m.deviceId} (${m.why})`).join(', ')}
                  {(p.original.movedOnCount ?? 0) > p.original.movedOn.length ? ', …' : ''}
                </dd>
              </>
            )}
            <dt>Parameters</dt>
            <dd>
              {Object.keys(p.params).length
                ? Object.entries(p.params)
                    .map(([k, v]) => `${k}=${v}`)
                    .join(' ')
                : '(none)'}
            </dd>
            <dt>Bytes to send</dt>
            <dd>
              {bytes(p.bytesToSend)} ({bytes(p.bytesInDepot)} already verified in the depot;{' '}
              {p.targetsHoldingContent ?? 0} endpoint(s) already hold it verified)
            </dd>
            <dt>Repeats</dt>
            <dd>
              {p.repeats}
              {p.commandId ? ` → ${p.commandId}` : ''}
            </dd>
            {p.approvedBy && (
              <>
                <dt>Decided by</dt>
                <dd>{p.approvedBy}</dd>
              </>
            )}
          </dl>
          {p.state === 'pending' && asking?.id !== p.planId && (
            <div className="actions">
              {(['approve', 'reject'] as const).map((d) => (
                <button
                  key={d}
                  type="button"
                  className={d}
                  disabled={!canDecide}
                  title={canDecide ? undefined : 'viewers only read'}
                  onClick={() => setAsking({ id: p.planId, d })}
                >
                  {d === 'approve' ? 'Approve' : 'Reject'}
                </button>
              ))}
            </div>
          )}
          {p.state === 'pending' && asking && asking.id === p.planId && (
            <div className="confirm" role="alertdialog" aria-label={`${asking.d} plan ${p.planId}`}>
              <p>
                {asking.d === 'approve'
                  ? `Redistribute job ${p.jobId} to ${recipients(p)} target(s) through ${p.relayId} now?`
                  : `Reject this plan? Job ${p.jobId} stays failed on ${p.relayId} until a new plan.`}
              </p>
              <button
                type="button"
                className={asking.d}
                onClick={() => (setAsking(null), onDecide(p.planId, asking.d))}
              >
                {asking.d === 'approve' ? 'Yes, approve' : 'Yes, reject'}
              </button>
              <button type="button" onClick={() => setAsking(null)}>
                Cancel
              </button>
            </div>
          )}
        </article>
      ))}
    </section>
  );
}
