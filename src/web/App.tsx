import { useEffect, useState } from 'react';
import { api, initialToken, saveToken } from './api.ts';
import { useLiveSnapshot } from './live-snapshot.ts';
import { Alerts } from './views/Alerts.tsx';
import { Fleet } from './views/Fleet.tsx';
import { Header } from './views/Header.tsx';
import { Jobs } from './views/Jobs.tsx';
import { Plans } from './views/Plans.tsx';
import { Rollouts } from './views/Rollouts.tsx';
import { Outages, Thresholds } from './views/Settings.tsx';
import { SignIn } from './views/SignIn.tsx';
import { Failed, Mail, Tickets } from './views/Tickets.tsx';

const TABS = [
  'Jobs',
  'Fleet',
  'Alerts',
  'Failed distributions',
  'Tickets',
  'Plans',
  'Outages',
  'Thresholds',
  'Mail',
] as const;
type Tab = (typeof TABS)[number];

export function App() {
  const [token, setToken] = useState<string | null>(() => initialToken());
  const [me, setMe] = useState<{ name: string; role: string } | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [tab, setTab] = useState<Tab>(() =>
    (TABS as readonly string[]).includes(decodeURIComponent(location.hash.slice(1)))
      ? (decodeURIComponent(location.hash.slice(1)) as Tab)
      : 'Jobs',
  );
  const { data, changes, live, refresh } = useLiveSnapshot(token, {
    error: setError,
    signedOut: (message) => (saveToken(null), setToken(null), setError(message)),
  });
  useEffect(() => {
    if (token) api(token, '/api/v1/me').then(setMe, () => setMe(null));
  }, [token]);

  const act = async (path: string, body: unknown = {}) => {
    try {
      await api(token!, path, { method: 'POST', body });
      await refresh();
    } catch (e) {
      setError((e as Error).message);
    }
  };

  if (!token) return <SignIn error={error} onToken={(t) => (saveToken(t), setError(null), setToken(t))} />;
  const counts: Partial<Record<Tab, number>> = data
    ? {
        Jobs: data.jobs.filter((j) => j.state === 'running').length,
        Tickets: data.tickets.filter((t) => t.state !== 'resolved').length,
        Plans: data.plans.filter((p) => p.state === 'pending').length,
        'Failed distributions': data.failed.filter((f) => f.state !== 'resolved').length,
      }
    : {};
  return (
    <div className="app">
      <Header
        live={live}
        relays={data?.relays ?? []}
        me={me}
        onSignOut={() => (saveToken(null), setToken(null), setMe(null))}
      />
      <nav>
        {TABS.map((t) => (
          <button
            type="button"
            key={t}
            role="tab"
            aria-selected={tab === t}
            className={tab === t ? 'active' : ''}
            onClick={() => ((location.hash = t), setTab(t))}
          >
            {t}
            {counts[t] ? <span className="badge">{counts[t]}</span> : null}
          </button>
        ))}
      </nav>
      {error && (
        <div className="error" role="alert">
          {error}
        </div>
      )}
      <main>
        {!data ? (
          <p>Loading…</p>
        ) : (
          <>
            {tab === 'Jobs' && (
              <>
                <Rollouts
                  rollouts={data.rollouts}
                  canDecide={me?.role === 'admin'}
                  onAct={(id, verb) => act(`/api/v1/jobs/${id}/${verb}`)}
                />
                <Jobs
                  jobs={data.jobs}
                  plans={data.plans}
                  failed={data.failed}
                  token={token}
                  canRollBack={me?.role === 'admin'}
                  onRollBack={(id) => act(`/api/v1/jobs/${id}/rollback`)}
                />
              </>
            )}
            {tab === 'Fleet' && <Fleet token={token} changed={changes} />}
            {tab === 'Alerts' && <Alerts alerts={data.alerts} />}
            {tab === 'Failed distributions' && <Failed failed={data.failed} />}
            {tab === 'Tickets' && (
              <Tickets
                tickets={data.tickets}
                outbox={data.outbox}
                canResolve={me?.role !== 'viewer'}
                onResolve={(id) => act(`/api/v1/tickets/${id}/resolve`)}
              />
            )}
            {tab === 'Plans' && (
              <Plans
                plans={data.plans}
                canDecide={me?.role !== 'viewer'}
                onDecide={(id, d) => act(`/api/v1/plans/${id}/${d}`, { by: 'dashboard' })}
              />
            )}
            {tab === 'Outages' && <Outages outages={data.outages} onAdd={(o) => act('/api/v1/outages', o)} />}
            {tab === 'Thresholds' && <Thresholds thresholds={data.thresholds} />}
            {tab === 'Mail' && <Mail outbox={data.outbox} />}
          </>
        )}
      </main>
    </div>
  );
}
