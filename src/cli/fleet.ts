// `fanout fleet`: which version runs where, attested or drifted; by site and by version.
import type { Command } from 'commander';
import { action, type MasterFlags, masterClient, print, table, withMaster } from './common.ts';

export function fleetCommand(program: Command) {
  withMaster(
    program
      .command('fleet')
      .description('devices with their installed versions (attested or drifted), last seen, by site and version')
      .option('--package <name>', 'devices that run this package (any version)')
      .option('--location <code>', 'devices at this location')
      .option('--search <text>', 'devices whose id, site, relay, labels or package@version contain this')
      .option('--limit <n>', 'devices per page (at most 5000)', '200')
      .option('--offset <n>', 'skip this many devices', '0'),
  )
    .addHelpText(
      'after',
      `
Package states: attested (installed, the signed tree attested from the disk), installed (a package
pushed before trees were signed), drift, tampered, failed. A device needs attention when one of its
packages is not attested or installed, or (a relay) when it is down.

LASTSEEN is a relay's last heartbeat, and an endpoint's last request to its relay (passed on at
most a minute late, read against the master's clock whatever the relay's says), step or
verification; \`fanout device verify ID\` asks an endpoint to speak now.

  fanout fleet --search "Store 0042"
  fanout fleet --search pos-app@2.4.1 --json`,
    )
    .action(
      action(
        async (
          o: MasterFlags & { search?: string; package?: string; location?: string; limit: string; offset: string },
        ) => {
          const q = new URLSearchParams({
            limit: o.limit,
            offset: o.offset,
            ...(o.search ? { search: o.search } : {}),
            ...(o.package ? { package: o.package } : {}),
            ...(o.location ? { location: o.location } : {}),
          });
          const r = await masterClient(o).get(`api/v1/fleet?${q}`);
          print(o.json, r, () =>
            [
              table(
                r.devices.map((d: any) => ({
                  ...d,
                  lastSeen: d.lastSeen ?? 'never',
                  relay: d.relay ?? '-',
                  packages: d.packages.map((p: any) => `${p.name}@${p.version} ${p.state}`).join(', ') || '-',
                })),
                ['id', 'kind', 'site', 'relay', 'lastSeen', 'health', 'packages'],
              ),
              `${r.devices.length} of ${r.total} device(s)`,
              '',
              table(r.sites, ['location', 'name', 'devices', 'attention']),
              '',
              table(r.versions, ['package', 'devices']),
            ].join('\n'),
          );
        },
      ),
    );
}
