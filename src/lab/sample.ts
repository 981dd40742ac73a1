// The lab's sample world: centers, stores with relays and tills, and a few packages.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const cities = [
  ['DAL', 'Dallas, TX', 'mc-south'],
  ['DEN', 'Denver, CO', 'mc-west'],
  ['ATL', 'Atlanta, GA', 'mc-south'],
  ['CHI', 'Chicago, IL', 'mc-north'],
  ['SEA', 'Seattle, WA', 'mc-west'],
  ['BOS', 'Boston, MA', 'mc-north'],
] as const;

/** `agents` endpoints in all, dealt round the relays' stores. */
export function sampleInventory(relays: number, agents: number) {
  const sites = Array.from({ length: relays }, (_, i) => {
    const [code, city, center] = cities[i % cities.length];
    const n = String(42 + i).padStart(4, '0');
    return {
      relay: `relay-${code.toLowerCase()}${i >= cities.length ? i : ''}`,
      code: `${code}-${n}`,
      name: `Store ${n}, ${city}`,
      center,
    };
  });
  return {
    centers: [
      { id: 'mc-south', name: 'South Field Services', email: ['south-ops@example.test'] },
      { id: 'mc-west', name: 'West Field Services', email: ['west-ops@example.test'] },
      { id: 'mc-north', name: 'North Field Services', email: ['north-ops@example.test', 'north-lead@example.test'] },
    ],
    locations: sites.map((s) => ({ code: s.code, name: s.name, center: s.center })),
    devices: sites.flatMap((s, i) => [
      { id: s.relay, kind: 'relay', location: s.code, upstream: 'master' },
      ...Array.from({ length: Math.floor(agents / relays) + (i < agents % relays ? 1 : 0) }, (_, k) => ({
        id: `${s.relay}-pos-${k + 1}`,
        kind: 'endpoint',
        location: s.code,
        relay: s.relay,
        labels: { role: 'pos' },
      })),
    ]),
  };
}

export function samplePackages(dir: string) {
  const pkgs = [
    { name: 'pos-app', version: '2.4.1', files: { 'app.txt': 'POS application 2.4.1\n' } },
    { name: 'pos-config', version: '1.0.0', files: { 'store.ini': '[store]\nmode=retail\n' } },
    {
      name: 'pos-app',
      version: '2.5.0',
      files: { 'app.txt': 'POS application 2.5.0\n', 'notes.txt': 'faster checkout\n' },
    },
  ];
  return pkgs.map((p) => {
    const d = join(dir, `${p.name}-${p.version}`);
    mkdirSync(d, { recursive: true });
    writeFileSync(
      join(d, 'fanout.json'),
      JSON.stringify({ name: p.name, version: p.version, install: { run: 'install.sh', timeoutSec: 30 } }, null, 2),
    );
    writeFileSync(
      join(d, 'install.sh'),
      '#!/bin/sh\necho "installed $FANOUT_PACKAGE $FANOUT_VERSION for $FANOUT_JOB" > install.log\n',
    );
    for (const [f, c] of Object.entries(p.files)) writeFileSync(join(d, f), c);
    return { ...p, dir: d };
  });
}

/** The lab master's fanout.yaml: its mail goes to the lab's sink; plans wait for an operator. */
export const labConfig = (smtpPort: number) =>
  [
    'alerts:',
    '  window: 24h',
    '  heartbeatTimeout: 15s',
    'mail:',
    `  smtp: { host: 127.0.0.1, port: ${smtpPort}, secure: false }`,
    '  from: fanout-lab@example.test',
    '  retries: 3',
    '  retryBaseMs: 500',
    'redistribution:',
    '  planOnTicketResolve: true',
    '  autoApprove: false',
    '',
  ].join('\n');
