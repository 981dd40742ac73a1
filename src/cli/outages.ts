// `fanout outage …` and `fanout threshold …`: what the alert center suppresses, and where it tickets.
import type { Command } from 'commander';
import {
  action,
  CliError,
  listUrl,
  type MasterFlags,
  masterClient,
  print,
  table,
  withMaster,
  withPaging,
} from './common.ts';

export function outageCommands(program: Command) {
  const outage = program
    .command('outage')
    .description('the outage list: devices or locations whose alerts make no ticket');
  withMaster(outage.command('add [device]').description('add an outage for a device, or a location with --location'))
    .option('--location <code>', 'a location code instead of a device')
    .requiredOption('--until <time>', 'end (ISO-8601), or how long from the start (90m, 4h, 2d)')
    .option('--from <time>', 'start (ISO-8601, default now)')
    .option('--reason <text>', 'why', '')
    .addHelpText(
      'after',
      `
Examples:
  fanout outage add relay-dal --until 2026-11-25T06:00:00Z --reason "disk replacement"
  fanout outage add relay-dal-pos-3 --until 4h --reason "till replaced"
  fanout outage add --location DAL-0042 --from 2026-11-25T22:00:00Z --until 2026-11-26T02:00:00Z --reason "store power work"`,
    )
    .action(
      action(
        async (
          device: string | undefined,
          o: MasterFlags & { location?: string; until: string; from?: string; reason: string },
        ) => {
          if (!device === !o.location) throw new CliError('give a DEVICE or --location CODE');
          const r = await masterClient(o).post('api/v1/outages', {
            deviceId: device,
            location: o.location,
            from: o.from,
            until: o.until,
            reason: o.reason,
          });
          print(
            o.json,
            r,
            () => `outage ${r.id}: ${r.deviceId ?? `location ${r.location}`} from ${r.from} until ${r.until}`,
          );
        },
      ),
    );
  withPaging(withMaster(outage.command('list').description('outages'))).action(
    action(async (o: MasterFlags) => {
      const r = await masterClient(o).get(listUrl('api/v1/outages', o));
      print(o.json, r, () => table(r, ['id', 'deviceId', 'location', 'from', 'until', 'reason']));
    }),
  );

  withMaster(outage.command('remove <id>').description('end an outage now (its alerts ticket again)')).action(
    action(async (id: string, o: MasterFlags) => {
      await masterClient(o).json('DELETE', `api/v1/outages/${encodeURIComponent(id)}`);
      print(o.json, { id }, () => `outage ${id} removed`);
    }),
  );

  const threshold = program.command('threshold').description('ticket thresholds');
  withMaster(threshold.command('list').description('window, thresholds by type and device overrides')).action(
    action(async (o: MasterFlags) => {
      const r = await masterClient(o).get('api/v1/thresholds');
      print(
        o.json,
        r,
        () =>
          `window ${r.window / 3_600_000}h, default ${r.defaultThreshold}\n` +
          table(
            Object.entries(r.failureTypes).map(([type, t]: [string, any]) => ({
              type,
              threshold: t.threshold ?? r.defaultThreshold,
              patterns: t.patterns.join(' | '),
            })),
            ['type', 'threshold', 'patterns'],
          ) +
          '\n\noverrides:\n' +
          table(r.deviceOverrides, ['deviceId', 'failureType', 'threshold', 'source']),
      );
    }),
  );
  withMaster(
    threshold
      .command('set <device> <type> <n>')
      .description('override the threshold of one failure type for one device'),
  ).action(
    action(async (device: string, type: string, n: string, o: MasterFlags) => {
      const r = await masterClient(o).post('api/v1/overrides', {
        deviceId: device,
        failureType: type,
        threshold: Number(n),
      });
      print(o.json, r, () => `${device}: ${type} tickets at alert number ${n} in the window`);
      if (!r.knownFailureType)
        process.stderr.write(
          `note: ${type} is not a failure type Fanout raises or fanout.yaml names, and no alert of ${device} has carried it: check its spelling (the override is kept)\n`,
        );
    }),
  );
}
