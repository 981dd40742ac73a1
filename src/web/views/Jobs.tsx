import { useEffect, useState } from 'react';
import { api } from '../api.ts';
import { ConfirmRollBack } from './ConfirmRollBack.tsx';
import { DeviceText, Pager, State, Table, time } from './common.tsx';
import { recipients } from './Plans.tsx';

const PAGE = 20;

/**
 * A job's targets a page at a time, those that failed first. The page is asked for again only when
 * this job changed (its summary is a new object), so a change elsewhere costs nothing here.
 */
function Targets({ job, token }: { job: any; token: string }) {
  const [offset, setOffset] = useState(0);
  const [rows, setRows] = useState<any[] | null>(null);
  useEffect(() => {
    void job; // a new summary of this job: its page may have changed
    api(token, `/api/v1/jobs/${encodeURIComponent(job.jobId)}/targets?limit=${PAGE}&offset=${offset}`).then(
      setRows,
      () => setRows([]),
    );
  }, [token, job, offset]);
  if (!rows) return <p className="muted">loading targets…</p>;
  return (
    <div>
      <Table
        rows={rows}
        rowKey={(t: any) => t.deviceId}
        empty="no targets"
        cols={[
          ['Target', (t: any) => t.deviceId],
          ['Relay', (t: any) => t.relayId],
          ['State', (t: any) => <State s={t.state} />],
          ['Attempt', (t: any) => t.attempt],
          ['Failure', (t: any) => t.failureType ?? ''],
          ['Attested', (t: any) => <Attested t={t} />],
        ]}
      />
      {job.total > PAGE && <Pager offset={offset} page={PAGE} total={job.total} what="targets " onOffset={setOffset} />}
    </div>
  );
}

export function Jobs({
  jobs,
  token,
  plans = [],
  failed = [],
  canRollBack = false,
  onRollBack,
}: {
  jobs: any[];
  token: string;
  plans?: any[];
  failed?: any[];
  canRollBack?: boolean;
  onRollBack?: (jobId: string) => void;
}) {
  const [rollingBack, setRollingBack] = useState<string | null>(null);
  if (!jobs.length)
    return (
      <p className="empty">
        No jobs yet. Create one with <code>fanout job create</code>.
      </p>
    );
  return (
    <section>
      <h2>Jobs</h2>
      {jobs.map((j) => {
        const total = j.total ?? j.targets.length;
        const installed = j.counts.installed ?? 0;
        return (
          <article key={j.jobId} className="job" data-job={j.jobId}>
            <h3>
              <span className="id">{j.jobId}</span> <State s={j.state} /> <small>{time(j.createdAt)}</small>
            </h3>
            <p className="packages">
              {j.packages.map((p: any) => `${p.name}@${p.version}`).join(', ')}
              {j.params?.rollbackOf ? ` (rollback of ${j.params.rollbackOf})` : ''}
              {j.ringOf ? ` (ring ${j.ringOf.ring} of ${j.ringOf.of} of rollout ${j.ringOf.rollout})` : ''}{' '}
              {onRollBack && j.state !== 'running' && rollingBack !== j.jobId && (
                <button
                  type="button"
                  className="link-dark"
                  disabled={!canRollBack}
                  title={canRollBack ? 'point the targets back at what they ran before' : 'admins only'}
                  onClick={() => setRollingBack(j.jobId)}
                >
                  Roll back…
                </button>
              )}
            </p>
            {rollingBack === j.jobId && (
              <ConfirmRollBack
                jobId={j.jobId}
                token={token}
                onClose={() => setRollingBack(null)}
                onConfirm={() => (setRollingBack(null), onRollBack?.(j.jobId))}
              />
            )}
            <History job={j} plans={plans} failed={failed} />
            <div className="progress" role="img" aria-label={`${installed} of ${total} installed`}>
              <div className="ok" style={{ width: `${(100 * installed) / Math.max(1, total)}%` }} />
              <div className="bad" style={{ width: `${(100 * (j.counts.failed ?? 0)) / Math.max(1, total)}%` }} />
              <span>
                {installed}/{total} installed{j.counts.failed ? `, ${j.counts.failed} failed` : ''}
              </span>
            </div>
            <div className="split">
              <Table
                rows={j.relays}
                rowKey={(r: any) => r.relayId}
                empty="no relays"
                cols={[
                  ['Relay', (r: any) => r.relayId],
                  ['State', (r: any) => <State s={r.state ?? 'not delivered'} />],
                  ['Failure', (r: any) => r.failureType ?? ''],
                  ['Error', (r: any) => <DeviceText className="msg" text={r.error} />],
                ]}
              />
              <Targets job={j} token={token} />
            </div>
          </article>
        );
      })}
    </section>
  );
}

/** What the endpoint's disk hashed to: the signed tree, or what went wrong with it. */
function Attested({ t }: { t: any }) {
  if (t.failureType === 'TAMPERED' || t.failureType === 'DRIFT')
    return <span className="attest-bad">{t.failureType === 'DRIFT' ? 'drifted' : 'not the signed tree'}</span>;
  if (!t.attestation) return <span className="attest-none">-</span>;
  const trees = Object.entries(t.attestation as Record<string, string>);
  return (
    <span title={trees.map(([p, h]) => `${p} ${h}`).join('\n')}>
      matches {trees.map(([, h]) => h.slice(0, 8)).join(' ')}
    </span>
  );
}

/** What happened to a job, in order: failed where and why, the plans, who approved them, how it ended. */
function History({ job, plans, failed }: { job: any; plans: any[]; failed: any[] }) {
  const steps: { at: string; text: string }[] = [{ at: job.createdAt, text: `created by ${job.createdBy}` }];
  for (const f of failed.filter((x) => x.jobId === job.jobId))
    steps.push({
      at: f.firstSeen,
      text: `failed on ${f.relayId}: ${f.failureType}${f.ticketId ? ` (ticket ${f.ticketId})` : ''}${f.state === 'resolved' ? ', repaired' : ''}`,
    });
  for (const p of plans.filter((x) => x.jobId === job.jobId)) {
    steps.push({
      at: p.createdAt,
      text: `plan ${p.planId} for ${recipients(p)} target(s) on ${p.relayId}`,
    });
    if (p.approvedBy)
      steps.push({
        at: p.updatedAt ?? p.createdAt,
        text: `${p.state === 'rejected' ? 'rejected' : 'approved'} by ${p.approvedBy}${p.state === 'complete' ? ', redistributed' : ''}`,
      });
  }
  // A job nothing happened to says only who made it; the end is in its state badge already.
  if (steps.length === 1) return <p className="history">{steps[0].text}</p>;
  if (job.state !== 'running') steps.push({ at: '9999', text: job.state });
  steps.sort((a, b) => a.at.localeCompare(b.at));
  return <p className="history">{steps.map((s) => s.text).join(' → ')}</p>;
}
