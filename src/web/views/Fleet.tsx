import { useEffect, useState } from 'react';
import { api } from '../api.ts';
import { Pager, State, Table, time } from './common.tsx';

const PAGE = 50;

/** The fleet: which version runs where (attested or drifted), by site and by version, searchable and paged. */
export function Fleet({ token, changed }: { token: string; changed: number }) {
  const [search, setSearch] = useState('');
  const [offset, setOffset] = useState(0);
  const [fleet, setFleet] = useState<any>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    // `changed` moves with every change event: this page (not the whole fleet) is asked for again.
    void changed;
    const q = new URLSearchParams({ limit: String(PAGE), offset: String(offset), ...(search ? { search } : {}) });
    api(token, `/api/v1/fleet?${q}`).then(
      (f) => (setFleet(f), setError(null)),
      (e) => setError((e as Error).message),
    );
  }, [token, search, offset, changed]);
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
