// `fanout lab`: a whole network on this machine, and the `repair` scenario run against it.
import { createReadStream, existsSync, readFileSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Client } from '../protocol/client.ts';
import { buildPackage } from '../protocol/package-file.ts';
import { makeLabTls } from './ca.ts';
import { MailSink } from './mail-sink.ts';
import { type LabProcess, spawnFanout, writeTokenFile } from './network.ts';
import { labConfig, sampleInventory, samplePackages } from './sample.ts';
import { say } from './say.ts';
import { repairScenario } from './scenario.ts';

export interface LabOptions {
  data: string;
  port: number;
  relays: number;
  agents: number;
  scenario: 'none' | 'repair';
  exitAfterScenario: boolean;
  /** TLS with a CA the lab makes in DATA/tls (default); false for plain HTTP. */
  tls?: boolean;
}

export async function runLab(o: LabOptions): Promise<number> {
  if (!(o.relays >= 1 && o.relays <= 50)) throw new Error(`--relays must be 1 to 50, not ${o.relays}`);
  if (!(o.agents >= 1 && o.agents <= 500)) throw new Error(`--agents must be 1 to 500, not ${o.agents}`);
  if (!(o.port >= 0 && o.port <= 65535)) throw new Error(`--port must be 0 to 65535, not ${o.port}`);
  const data = resolve(o.data);
  // A lab starts fresh each time, so the scenario always tells the same story.
  await rm(data, { recursive: true, force: true });
  await mkdir(data, { recursive: true });
  const logs = join(data, 'logs');
  const tls = o.tls === false ? undefined : await makeLabTls(join(data, 'tls'));
  const serve = tls ? ['--tls-cert', tls.cert, '--tls-key', tls.key] : [];
  const trust = tls ? ['--ca', tls.ca] : [];
  const clientTls = tls ? { ca: readFileSync(tls.ca, 'utf8') } : undefined;
  const procs: LabProcess[] = [];
  const sink = new MailSink();
  let stopping = false;
  const stopAll = async () => {
    if (stopping) return;
    stopping = true;
    say('stopping the lab…');
    await Promise.allSettled(procs.filter((p) => p.name !== 'master').map((p) => p.stop()));
    await Promise.allSettled(procs.filter((p) => p.name === 'master').map((p) => p.stop()));
    await sink.close().catch(() => undefined);
    say('stopped');
  };
  const onSignal = () => void stopAll().then(() => process.exit(0));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  try {
    const smtpPort = await sink.listen();
    sink.onMail = (m) => say(`mail sink: received "${m.subject}" for ${m.to.join(', ')}`);
    say(`mail sink (SMTP) on 127.0.0.1:${smtpPort}`);
    await mkdir(join(data, 'master'), { recursive: true });
    await writeFile(join(data, 'master', 'fanout.yaml'), labConfig(smtpPort));
    const master = await spawnFanout(
      'master',
      [
        'master',
        '--data',
        join(data, 'master'),
        '--listen',
        `127.0.0.1:${o.port}`,
        '--allow-faults',
        ...serve,
        ...trust,
      ],
      logs,
    );
    procs.push(master);
    const token = (await readFile(join(data, 'master', 'admin.token'), 'utf8')).trim();
    const admin = new Client({ baseUrl: master.url, token, tls: clientTls });
    say(`master on ${master.url}`);

    const world = sampleInventory(o.relays, o.agents);
    const inv = await admin.post<{ devices: { id: string; kind: string; token: string }[] }>('api/v1/inventory', world);
    const tokens = new Map(inv.devices.map((d) => [d.id, d.token]));
    const tokenFile = (id: string) => writeTokenFile(join(data, 'tokens'), id, tokens.get(id)!);
    const relayIds = inv.devices.filter((d) => d.kind === 'relay').map((d) => d.id);
    say(
      `inventory: ${relayIds.length} relays, ${inv.devices.length - relayIds.length} endpoints, 3 maintenance centers`,
    );

    const started = await Promise.all(
      relayIds.map(async (id) => {
        const dir = join(data, 'relays', id);
        const p = await spawnFanout(
          id,
          ['relay', '--master', master.url, '--id', id, '--token-file', await tokenFile(id), '--data', dir].concat([
            '--listen',
            '127.0.0.1:0',
            '--allow-faults',
            '--heartbeat-ms',
            '2000',
            ...serve,
            ...trust,
          ]),
          logs,
        );
        procs.push(p);
        return [id, Object.assign(p, { data: dir })] as const;
      }),
    );
    const relays = new Map(started);
    say(`relays: ${[...relays.values()].map((r) => `${r.name} ${r.url}`).join(', ')}`);
    const endpoints = world.devices.flatMap((d) => ('relay' in d ? [d] : []));
    await Promise.all(
      endpoints.map(async (d) => {
        const dir = join(data, 'agents', d.id);
        procs.push(
          await spawnFanout(
            d.id,
            ['agent', '--relay', relays.get(d.relay)!.url, '--id', d.id, '--token-file', await tokenFile(d.id)].concat([
              '--data',
              join(dir, 'data'),
              '--root',
              join(dir, 'root'),
              '--allow-faults',
              ...trust,
            ]),
            logs,
          ),
        );
      }),
    );
    say(`agents: ${endpoints.length} endpoints polling their relays`);

    for (const p of samplePackages(join(data, 'packages'))) {
      const built = await buildPackage(p.dir, `${p.dir}.tgz`);
      const res = await admin.raw('POST', 'api/v1/packages', {
        body: createReadStream(built.file) as unknown as BodyInit,
        headers: { 'content-type': 'application/gzip' },
      });
      const pushed = (await res.json()) as { digest: string };
      say(`package ${p.name}@${p.version} pushed and signed (${pushed.digest.slice(0, 19)}…)`);
    }
    const dashboard = `${master.url}/?token=${encodeURIComponent(token)}`;
    await writeFile(
      join(data, 'lab.json'),
      JSON.stringify(
        {
          master: master.url,
          token,
          dashboard,
          smtpPort,
          relays: Object.fromEntries([...relays].map(([id, r]) => [id, { url: r.url, data: r.data }])),
        },
        null,
        2,
      ),
    );
    say('');
    say(`dashboard: ${dashboard}`);
    say(
      `CLI: export FANOUT_MASTER=${master.url} FANOUT_TOKEN_FILE=${join(data, 'master', 'admin.token')}${tls ? ` FANOUT_CA=${tls.ca}` : ''}`,
    );
    say('');

    let ok = true;
    if (o.scenario === 'repair') {
      ok = await repairScenario({ admin, relays, sink, interactive: !o.exitAfterScenario && !!process.stdin.isTTY });
      say(
        ok
          ? 'scenario repair: ended well — every target installed, failed distribution and ticket resolved'
          : 'scenario repair: did NOT end well (see the logs in ' + logs + ')',
      );
    }
    if (o.exitAfterScenario) {
      await stopAll();
      return ok ? 0 : 1;
    }
    say('the lab keeps running; press Ctrl-C to stop it');
    await new Promise(() => {}); // until a signal
    return 0;
  } catch (e) {
    process.stderr.write(`fanout lab: ${(e as Error).message}\n`);
    if (existsSync(logs)) process.stderr.write(`logs are in ${logs}\n`);
    await stopAll();
    return 1;
  }
}
