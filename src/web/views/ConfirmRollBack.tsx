import { useEffect, useState } from 'react';
import { api } from '../api.ts';

/** Asks before a rollback, showing what it would do (the master's dry run): which versions, on how many targets. */
export function ConfirmRollBack({
  jobId,
  token,
  onClose,
  onConfirm,
}: {
  jobId: string;
  token: string;
  onClose: () => void;
  onConfirm: () => void;
}) {
  const [plan, setPlan] = useState<any | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    api(token, `/api/v1/jobs/${encodeURIComponent(jobId)}/rollback`).then(setPlan, (e) => setError(e.message));
  }, [token, jobId]);
  const targets = plan?.jobs.reduce((n: number, g: any) => n + g.targets.length, 0) ?? 0;
  return (
    <div className="confirm" role="alertdialog" aria-label={`roll back ${jobId}`}>
      {error && <p>Cannot tell what a rollback would do: {error}</p>}
      {!error && !plan && <p className="muted">Looking for what each target ran before…</p>}
      {plan && !plan.jobs.length && (
        <p>
          Nothing to go back to: no target of {jobId} ran an earlier version of {plan.packages.join(', ')}.
        </p>
      )}
      {plan?.jobs.length > 0 && (
        <>
          <p>
            Point {targets} target{targets === 1 ? '' : 's'} of {jobId} back at what {targets === 1 ? 'it' : 'they'} ran
            before?
          </p>
          <ul>
            {plan.jobs.map((g: any) => (
              <li key={g.packages.join(' ')}>
                {g.packages.join(', ')} on {g.targets.length} target{g.targets.length === 1 ? '' : 's'}
              </li>
            ))}
            {plan.skipped.length > 0 && (
              <li>
                {plan.skipped.length} target{plan.skipped.length === 1 ? ' has' : 's have'} nothing earlier and stay as
                they are
              </li>
            )}
          </ul>
          <button type="button" className="reject" onClick={onConfirm}>
            Yes, roll back
          </button>
        </>
      )}
      <button type="button" onClick={onClose}>
        {plan?.jobs.length ? 'Cancel' : 'Close'}
      </button>
    </div>
  );
}
