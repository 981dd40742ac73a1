import { useEffect, useRef, useState } from 'react';
import { api } from '../api.ts';
import { Pager, State, Table, time } from './common.tsx';

const PAGE = 50;

/** The fleet: which version runs where (attested or drifted), by site and by version, searchable and paged. */
export function Fleet({ token, changed }: { token: string; changed: number }) {
  const [search, setSearch] = useState('');
  const [offset, setOffset] = useState(0);
  const [fleet, setFleet] = useState<any>(null);
  const [error, setError] = useState<string | null>(null);
  const asked = useRef({ seq: 0, busy: false, again: false, next: 0, timer: undefined as number | undefined });
  const query = new URLSearchParams({ limit: String(PAGE), offset: String(offset), ...(search ? { search } : {}) });
  const url = `/api/v1/fleet?${query}`;
  const ask = useRef<() => void>(() => undefined);
  // After a change: once the pause since the last question is over (a page of 100,000 devices costs
  // the master a quarter of a second; it is not asked for ten times a second while reports pour in).
  const later = useRef<() => void>(() => undefined);
  later.current = () => {
    const a = asked.current;
    if (a.timer !== undefined) return; // the question already waiting will see this change too
    a.timer = window.setTimeout(() => ((a.timer = undefined), ask.current()), Math.max(0, a.next - Date.now()));
  };
  ask.current = () => {
    const a = asked.current;
    const seq = ++a.seq;
    const started = Date.now();
    a.busy = true;
    api(token, url)
      .then(
        // Only the latest question's answer is shown (an older search may answer last).
        (f) => seq === a.seq && (setFleet(f), setError(null)),
        (e) => seq === a.seq && setError((e as Error).message),
      )
      .finally(() => {
        a.busy = false;
        a.next = started + Math.max(1000, 4 * (Date.now() - started));
        if (a.again) (a.again = false), later.current();
      });
  };
  // What the operator asked for: at once.
  useEffect(() => {
    void url; // a new search or page
    clearTimeout(asked.current.timer);
    asked.current.timer = undefined;
    ask.current();
  }, [url]);
  // A change event: at most one question in flight, the next after the pause.
  const seen = useRef(changed);
  useEffect(() => {
    if (changed === seen.current) return; // the page was just asked for
    seen.current = changed;
    if (asked.current.busy) asked.current.again = true;
    else later.current();
  }, [changed]);
  useEffect(() => () => clearTimeout(asked.current.timer), []);
  return (
    <section className="fleet">
      <h2>Fleet</h2>
      <label className="search">
        Search
        <input
          type="search"
          value={search}
          placeholder="device, site, relay, package@version"
          onChange={(e) => (setSearch(e.target.value), setOffset(0))}
        />
      </label>
      {error && <p className="error">{error}</p>}
      {fleet && (
        <>
          <div className="fleet-summary">
            <Table
              rows={fleet.sites}
              rowKey={(s: any) => s.location}
              empty="No sites."
              cols={[
                ['Site', (s: any) => `${s.name} (${s.location})`],
                ['Devices', (s: any) => s.devices],
                ['Need attention', (s: any) => (s.attention ? <span className="attest-bad">{s.attention}</span> : 0)],
              ]}
            />
            <Table
              rows={fleet.versions}
              rowKey={(v: any) => v.package}
              empty="Nothing installed yet."
              cols={[
                ['Package', (v: any) => v.package],
                ['Devices', (v: any) => v.devices],
              ]}
            />
          </div>
          <Table
            rows={fleet.devices}
            rowKey={(d: any) => d.id}
            empty="No device matches."
            cols={[
              ['Device', (d: any) => <span data-device={d.id}>{d.id}</span>],
              ['Kind', (d: any) => d.kind],
              ['Site', (d: any) => d.site],
              ['Relay', (d: any) => d.relay ?? '-'],
              ['Last seen', (d: any) => time(d.lastSeen)],
              ['Health', (d: any) => <State s={d.health} />],
              [
                'Installed',
                (d: any) =>
                  d.packages.map((p: any) => (
                    <span key={p.name} className={`pkg pkg-${p.state}`} title={`${p.state} since ${time(p.at)}`}>
                      {p.name}@{p.version} {p.state}
                    </span>
                  )),
              ],
            ]}
          />
          <Pager offset={offset} page={PAGE} total={fleet.total} empty="0 devices" onOffset={setOffset} />
        </>
      )}
    </section>
  );
}
