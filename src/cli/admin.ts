// Commands an operator runs against the master: inventory, devices, packages.

import { createReadStream, existsSync } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import { basename } from 'node:path';
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
import { deviceVerifyCommand } from './verify.ts';

export function adminCommands(program: Command) {
  const inventory = program.command('inventory').description('centers, locations and devices');
  withMaster(
    inventory
      .command('import <file>')
      .description('upsert centers, locations and devices from YAML or JSON; prints one token per new device')
      .addHelpText(
        'after',
        `
The file (YAML or JSON; the whole format with an example: docs/inventory.md):
  centers:   [{id, name, email: [addresses]}]          who gets the tickets
  locations: [{code, name, center}]                    sites
  devices:   [{id, kind: relay|endpoint, location, relay (endpoints), upstream (relays: master
              or a parent relay), hostname?, labels?: {k: v}}]
Nothing is imported while any entry is wrong; every error is listed. Existing devices keep their tokens.
For large fleets, --tokens FILE writes "ID TOKEN" lines (mode 0600) instead of printing them:
  fanout inventory import fleet.yaml --tokens tokens.txt`,
      )
      .option('--tokens <file>', 'write the new devices\' tokens to FILE (mode 0600), one "ID TOKEN" line each'),
  ).action(
    action(async (file: string, f: MasterFlags & { tokens?: string }) => {
      const text = await readFile(file, 'utf8').catch(() => {
        throw new CliError(`cannot read ${file}`);
      });
      const r = await (
        await masterClient(f).raw('POST', 'api/v1/inventory', {
          body: text,
          headers: { 'content-type': 'application/yaml' },
          // 100k devices take seconds; a million, minutes.
          timeoutMs: 15 * 60_000,
        })
      ).json();
      if (f.tokens) {
        const issued: { id: string; token: string }[] = r.devices.filter((d: { token: string | null }) => d.token);
        // 0600 before a byte is written, also when the file was already there with a looser mode.
        const fh = await open(f.tokens, 'w', 0o600);
        try {
          await fh.chmod(0o600);
          await fh.writeFile(issued.map((d) => `${d.id} ${d.token}\n`).join(''));
        } finally {
          await fh.close();
        }
        const out = { ...r, devices: r.devices.length, newTokens: issued.length, tokensFile: f.tokens };
        return print(
          f.json,
          out,
          () =>
            `imported ${r.centers} center(s), ${r.locations} location(s), ${out.devices} device(s)\n` +
            `${issued.length} new token(s) written to ${f.tokens}`,
        );
      }
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
  deviceVerifyCommand(device);
  withMaster(
    device
      .command('token <id>')
      .description('issue a new token for a device (the old one stops working, at its relay too)'),
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
    .addHelpText(
      'after',
      `
fanout.json (the whole format: docs/packages.md):
  {"name": "pos-app", "version": "2.4.1", "install": {"run": "install.sh", "timeoutSec": 300}}
Only files and folders: no links, devices, setuid/setgid/sticky or world-writable modes.
  fanout package build ./pos-app && fanout package push pos-app-2.4.1.tgz`,
    )
    .option('-o, --output <file>', 'the package file to write (default: NAME-VERSION.tgz in the working folder)')
    .option('--json', 'print machine-readable JSON')
    .action(
      action(async (dir: string, o: { output?: string; json?: boolean }) => {
        const { buildPackage } = await import('../protocol/package-file.ts');
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
        { name: r.name, version: r.version, digest: r.digest, size: r.size, tree: r.tree },
        () => `pushed ${r.name}@${r.version} (${basename(file)}, ${r.size} bytes, ${r.digest}, tree ${r.tree})`,
      );
    }),
  );
  withPaging(withMaster(pkg.command('list').description('packages on the master'))).action(
    action(async (f: MasterFlags) => {
      const r = await masterClient(f).get(listUrl('api/v1/packages', f));
      print(f.json, r, () => table(r, ['name', 'version', 'size', 'digest']));
    }),
  );

  const key = program.command('key').description("the master's signing key");
  withMaster(key.command('show').description('the key this master signs with, and the rotations it hands out'))
    .addHelpText(
      'after',
      '\nWith several masters, each may sign with an older copy of the key (still valid): "latest" says\nwhich key the rotations lead to.',
    )
    .action(
      action(async (f: MasterFlags) => {
        const r = await masterClient(f).get<{ fingerprint: string; rotations: { statement: { next: string } }[] }>(
          'api/v1/keys',
        );
        const { fingerprint: keyFingerprint } = await import('../protocol/keys.ts');
        const latest = r.rotations.length ? keyFingerprint(r.rotations.at(-1)!.statement.next) : r.fingerprint;
        const shown = { fingerprint: r.fingerprint, rotations: r.rotations.length, latest };
        print(f.json, shown, () =>
          [
            `signs with ${r.fingerprint}`,
            `rotations: ${r.rotations.length}, leading to ${latest}`,
            ...(latest === r.fingerprint
              ? []
              : ['this master signs with an older copy of the key: copy the latest here']),
          ].join('\n'),
        );
      }),
    );
  withMaster(
    key
      .command('rotate')
      .description(
        'make a new signing key; relays and agents accept it because the old key signs a rotation statement',
      ),
  )
    .addHelpText(
      'after',
      [
        '',
        'Relays and endpoints take the new key up with the first command it signs; what the old key',
        'signed stays valid. With several masters on separate hosts, copy signing.key and',
        'signing.key.rotations.json from this master to the others afterwards (each takes them up',
        'without a restart); until then they sign with the old key. See docs/scale-out.md.',
      ].join('\n'),
    )
    .action(
      action(async (f: MasterFlags) => {
        const r = await masterClient(f).post('api/v1/keys/rotate');
        print(f.json, r, () => `new signing key ${r.fingerprint} (follows ${r.previous})`);
      }),
    );
}
