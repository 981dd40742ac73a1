// Commands an operator runs against the master: inventory, devices, packages, jobs.
import { createReadStream, existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Command } from 'commander';
import { Progress } from '../common/progress.ts';
import { buildPackage } from '../protocol/package-file.ts';
import {
  action,
  CliError,
  collect,
  keyValues,
  type MasterFlags,
  masterClient,
  print,
  table,
  withMaster,
} from './common.ts';

export function adminCommands(program: Command) {
  const inventory = program.command('inventory').description('centers, locations and devices');
  withMaster(
    inventory
      .command('import <file>')
      .description('upsert centers, locations and devices from YAML or JSON; prints one token per new device'),
  ).action(
    action(async (file: string, f: MasterFlags) => {
      const text = await readFile(file, 'utf8').catch(() => {
        throw new CliError(`cannot read ${file}`);
      });
      const r = await (
        await masterClient(f).raw('POST', 'api/v1/inventory', {
          body: text,
          headers: { 'content-type': 'application/yaml' },
        })
      ).json();
      print(
        f.json,
        r,
        () =>
          `imported ${r.centers} center(s), ${r.locations} location(s), ${r.devices.length} device(s)\n` +
          table(r.devices, ['id', 'kind', 'token']) +
          (r.devices.some((d: { token: string | null }) => !d.token)
            ? '\n(devices without a token kept theirs; `fanout device token ID` issues a new one)'
            : ''),
      );
    }),
  );

  const device = program.command('device').description('devices');
  withMaster(
    device.command('token <id>').description('issue a new token for a device (the old one stops working)'),
  ).action(
    action(async (id: string, f: MasterFlags) => {
      const r = await masterClient(f).post(`api/v1/devices/${encodeURIComponent(id)}/token`);
      print(f.json, r, () => r.token);
    }),
  );

  const pkg = program.command('package').description('build and push packages');
  pkg
    .command('build <dir>')
    .description('pack a folder holding fanout.json into a .tgz')
    .requiredOption('-o, --output <file>', 'the package file to write')
    .option('--json', 'print machine-readable JSON')
    .action(
      action(async (dir: string, o: { output: string; json?: boolean }) => {
        const out = await buildPackage(dir, o.output);
        print(o.json, out, () => `built ${out.name}@${out.version} → ${out.file} (${out.size} bytes, ${out.digest})`);
      }),
    );
  withMaster(
    pkg.command('push <file>').description('upload a package; the master stores it by SHA-256 and signs it'),
  ).action(
    action(async (file: string, f: MasterFlags) => {
      if (!existsSync(file)) throw new CliError(`no such file: ${file}`);
      const client = masterClient(f);
      const res = await client.raw('POST', 'api/v1/packages', {
        body: createReadStream(file) as unknown as BodyInit,
        headers: { 'content-type': 'application/gzip' },
        timeoutMs: 3_600_000,
      });
      const r = await res.json();
      print(
        f.json,
        { name: r.name, version: r.version, digest: r.digest, size: r.size },
        () => `pushed ${r.name}@${r.version} (${basename(file)}, ${r.size} bytes, ${r.digest})`,
      );
    }),
  );
  withMaster(pkg.command('list').description('packages on the master')).action(
    action(async (f: MasterFlags) => {
      const r = await masterClient(f).get('api/v1/packages');
      print(f.json, r, () => table(r, ['name', 'version', 'size', 'digest']));
    }),
  );

  const job = program.command('job').description('distribution jobs');
  withMaster(job.command('create').description('create a job: packages to targets (by id or label)'))
    .option('--package <name@version>', 'a package (repeat for more)', collect)
    .option('--target <id>', 'an endpoint (repeat for more)', collect)
    .option('--label <k=v>', 'endpoints with this label (repeat: all must match)', collect)
    .option(
      '--param <k=v>',
      'installRoot, timeoutSec, preCommand, postCommand, deadline, maxAttempts, rateLimitKBps',
      collect,
    )
    .addHelpText(
      'after',
      `
Parameters:
  deadline=30m | 2026-11-25T06:00:00Z   targets not installed by then end as failed (default 1h)
  maxAttempts=3                         install attempts per target
  timeoutSec=120                        install script timeout (default: the package's own)
  rateLimitKBps=512                     each relay's download rate from its upstream
  installRoot=/opt/apps                 instead of the agent's --root
  preCommand=… postCommand=…            shell commands run around the install script

Examples:
  fanout job create --package pos-app@2.4.1 --package pos-config@1.0.0 --label role=pos
  fanout job create --package pos-app@2.4.1 --target pos-0042-01 --param deadline=2h --json`,
    )
    .action(
      action(async (o: MasterFlags & { package?: string[]; target?: string[]; label?: string[]; param?: string[] }) => {
        if (!o.package?.length) throw new CliError('give at least one --package NAME@VERSION');
        const params: Record<string, unknown> = keyValues(o.param, '--param');
        const r = await masterClient(o).post('api/v1/jobs', {
          packages: o.package,
          targets: o.target,
          labels: o.label ? keyValues(o.label, '--label') : undefined,
          params,
        });
        print(o.json, { jobId: r.jobId, commands: r.commands }, () => r.jobId);
      }),
    );
  const jobView = (r: any) => ({
    jobId: r.jobId,
    state: r.state,
    counts: r.counts,
    relays: r.relays,
    targets: r.targets.map((t: any) => ({
      deviceId: t.deviceId,
      relayId: t.relayId,
      state: t.state,
      failureType: t.failureType,
      error: t.error,
      attempt: t.attempt,
    })),
  });
  const human = (r: any) =>
    `job ${r.jobId}: ${r.state} (${Object.entries(r.counts)
      .map(([k, v]) => `${v} ${k}`)
      .join(', ')})\n` + table(r.targets, ['deviceId', 'relayId', 'state', 'failureType', 'error']);
  withMaster(job.command('status <id>').description('a job, per relay and target')).action(
    action(async (id: string, f: MasterFlags) => {
      const r = await masterClient(f).get(`api/v1/jobs/${encodeURIComponent(id)}`);
      print(f.json, jobView(r), () => human(r));
    }),
  );
  withMaster(
    job.command('wait <id>').description('wait until a job ends: exit 0 when complete, 1 when failed or timed out'),
  )
    .option('--timeout <seconds>', 'give up after this long', '600')
    .action(
      action(async (id: string, o: MasterFlags & { timeout: string }) => {
        const client = masterClient(o);
        const until = Date.now() + Number(o.timeout) * 1000;
        const progress = new Progress(id, process.stderr, o.json);
        for (;;) {
          const r = await client.get(`api/v1/jobs/${encodeURIComponent(id)}`);
          const others = Object.entries(r.counts)
            .filter(([k]) => k !== 'installed')
            .map(([k, v]) => `${v} ${k}`)
            .join(', ');
          progress.update(r.counts.installed ?? 0, r.targets.length, `${r.state}${others ? ` (${others})` : ''}`);
          if (r.state !== 'running' || Date.now() > until) {
            progress.stop();
            const timedOut = r.state === 'running';
            print(
              o.json,
              { ...jobView(r), ...(timedOut ? { timedOut: true } : {}) },
              () => human(r) + (timedOut ? `\ntimed out after ${o.timeout}s` : ''),
            );
            return r.state === 'complete' ? 0 : 1;
          }
          await sleep(500);
        }
      }),
    );
  withMaster(job.command('list').description('recent jobs')).action(
    action(async (f: MasterFlags) => {
      const r = await masterClient(f).get('api/v1/jobs');
      print(f.json, r.map(jobView), () =>
        table(
          r.map((j: any) => ({
            jobId: j.jobId,
            state: j.state,
            createdAt: j.createdAt,
            targets: Object.entries(j.counts)
              .map(([k, v]) => `${v} ${k}`)
              .join(', '),
          })),
          ['jobId', 'state', 'createdAt', 'targets'],
        ),
      );
    }),
  );
}
