// `fanout device verify`: endpoints hash their installed versions now and answer through their relays.
import type { Command } from 'commander';
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

interface Answer {
  id: string;
  package: string | null;
  version: string | null;
  state: string;
  detail?: string | null;
}

export function deviceVerifyCommand(device: Command) {
  withMaster(
    device
      .command('verify [ids...]')
      .description("hash endpoints' installed versions now against their signed trees; report drift")
      .option('--label <k=v>', 'endpoints with this label (repeat: all must match)', collect)
      .option('--timeout <seconds>', 'how long to wait for the answers', '60'),
  )
    .addHelpText(
      'after',
      `
Each endpoint hashes every installed version and compares it with the tree the master signed.
States: ok, drift (a signed file changed or went missing, or a file appeared after the install;
a DRIFT alert goes to the alert center), missing (the version's folder is gone), unreachable (no
answer within --timeout). Exit status 0 when every answer is ok, 1 otherwise.

  fanout device verify relay-dal-pos-1 relay-dal-pos-2
  fanout device verify --label role=pos --json`,
    )
    .action(
      action(async (ids: string[], o: MasterFlags & { label?: string[]; timeout: string }) => {
        const timeoutMs = Number(o.timeout) * 1000;
        if (!(timeoutMs > 0)) throw new CliError(`--timeout must be a number of seconds, not "${o.timeout}"`);
        if (!ids.length && !o.label?.length) throw new CliError('name endpoints: IDS… or --label k=v');
        const client = masterClient(o);
        const asked = await client.post<{
          requestId: string;
          devices: string[];
          unreachable: { id: string; why: string }[];
        }>('api/v1/devices/verify', ids.length ? { devices: ids } : { labels: keyValues(o.label, '--label') });
        const waiting = asked.devices.filter((d) => !asked.unreachable.some((u) => u.id === d));
        const { Progress } = await import('../common/progress.ts');
        const progress = new Progress(asked.requestId, process.stderr, o.json, 'answered');
        let answers: Answer[] = [];
        const until = Date.now() + timeoutMs;
        for (;;) {
          answers = (await client.get<{ answers: Answer[] }>(`api/v1/verifications/${asked.requestId}`)).answers;
          const heard = new Set(answers.map((a) => a.id));
          progress.update(heard.size, waiting.length, `${answers.filter((a) => a.state !== 'ok').length} not ok`);
          if (waiting.every((d) => heard.has(d)) || Date.now() > until) break;
          await new Promise((r) => setTimeout(r, 500));
        }
        progress.stop();
        const heard = new Set(answers.map((a) => a.id));
        const devices: Answer[] = [
          ...answers.map((a) => ({ ...a, package: a.package || null, version: a.version || null })),
          ...asked.devices
            .filter((d) => !heard.has(d))
            .map((id) => ({
              id,
              package: null,
              version: null,
              state: 'unreachable',
              detail: asked.unreachable.find((u) => u.id === id)?.why ?? `no answer within ${o.timeout}s`,
            })),
        ];
        print(o.json, { requestId: asked.requestId, devices }, () =>
          table(
            devices.map((d) => ({
              ...d,
              package: d.package ?? '-',
              version: d.version ?? '-',
              detail: d.detail ?? '',
            })),
            ['id', 'package', 'version', 'state', 'detail'],
          ),
        );
        return devices.every((d) => d.state === 'ok') ? 0 : 1;
      }),
    );
}
