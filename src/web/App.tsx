import { useCallback, useEffect, useRef, useState } from 'react';
import { AuthError, api, type ChangeEvent, initialToken, saveToken, subscribe } from './api.ts';
import { fetchChange, load, type Snapshot } from './data.ts';
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
  const [data, setData] = useState<Snapshot | null>(null);
  const [changes, setChanges] = useState(0);
  const [me, setMe] = useState<{ name: string; role: string } | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [live, setLive] = useState(false);
  const [tab, setTab] = useState<Tab>(() =>
    (TABS as readonly string[]).includes(decodeURIComponent(location.hash.slice(1)))
      ? (decodeURIComponent(location.hash.slice(1)) as Tab)
      : 'Jobs',
  );
  const loading = useRef(false);
  const dataRef = useRef<Snapshot | null>(null);
  const liveRef = useRef(false);
  const again = useRef(false);
  /** Change events that came during a full load: its lists may be from before them. */
  const during = useRef<ChangeEvent[] | null>(null);
  const applyRef = useRef<(e: ChangeEvent) => void>(() => undefined);

  const refresh = useCallback(async () => {
    if (!token) return;
    if (loading.current) return void (again.current = true);
    loading.current = true;
    during.current = [];
    try {
      const all = await load(token);
      dataRef.current = all;
      setData(all);
      // What changed meanwhile is asked for again, after the load: only what those events name.
      const missed = during.current.filter((e) => !e.all);
      if (missed.length)
        applyRef.current({
          all: false,
          lists: [...new Set(missed.flatMap((e) => e.lists ?? []))],
          jobs: [...new Set(missed.flatMap((e) => e.jobs ?? []))],
        });
      setChanges((n) => n + 1);
      setError(null);
    } catch (e) {
      if (e instanceof AuthError) {
        saveToken(null);
        setToken(null);
        setError(e.message);
      } else setError((e as Error).message);
    } finally {
      loading.current = false;
      during.current = null;
      if (again.current) {
        again.current = false;
        void refresh();
      }
    }
  }, [token]);

  useEffect(() => {
    if (!token) return;
    void refresh();
    api(token, '/api/v1/me').then(setMe, () => setMe(null));
    let queue = Promise.resolve();
    const apply = (e: ChangeEvent) => {
      // One at a time, each patching what the dashboard holds when its answers arrive.
      queue = queue.then(async () => {
        try {
          const patch = await fetchChange(token, e);
          const next = patch(dataRef.current!);
          dataRef.current = next;
          setData(next);
          if (e.lists?.includes('fleet')) setChanges((n) => n + 1);
        } catch {
          void refresh();
        }
      });
    };
    applyRef.current = apply;
    const onChange = (e: ChangeEvent) => {
      during.current?.push(e);
      if (e.all || !dataRef.current) return void refresh();
      apply(e);
    };
    const stop = subscribe(token, onChange, (on) => ((liveRef.current = on), setLive(on)));
    // A safety net only while events cannot get through.
    const poll = setInterval(() => liveRef.current || void refresh(), 5000);
    return () => (stop(), clearInterval(poll));
  }, [token, refresh]);

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
