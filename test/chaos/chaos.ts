// Chaos rounds against a whole network on PostgreSQL (issue 9): jobs created at once while relays,
// agents and the master are killed with SIGKILL, a relay's disk fills and SMTP refuses mail. An
// operator then does what one would (clears faults, resolves tickets, resends mail), and the truth on
// every endpoint's disk is compared with what the master reports, the relays' job logs and the mail sink.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { MailSink, type SunkMail } from '../../src/lab/mail-sink.ts';
import { Client } from '../../src/protocol/client.ts';
import { caArgs, type Network, runFanout, serverTlsArgs, startFanout, startNetwork, writePackage } from '../helpers.ts';
import { pgDatabase } from '../pg.ts';

/** The agents' `--keep-versions` (their default): older installs of a package are removed. */
const KEEP_VERSIONS = 2;
/** Chaos versions are `ROUND.0.0`. */
const major = (v: string) => Number(v.split('.')[0]);

export interface ChaosFigures {
  rounds: number;
  endpoints: number;
  relays: number;
  jobs: number;
  kills: number;
  diskFaults: number;
  smtpRefusals: number;
  tickets: number;
  mails: number;
  commandsLost: number;
  targetsMisreported: number;
  duplicateInstalls: number;
  /** Scripts run again after an agent was killed while they ran (told FANOUT_INTERRUPTED=1). */
  installsInterrupted: number;
  duplicateMails: number;
  ticketsNeverMailed: number;
  jobsNotConverged: number;
}

const pick = <T>(xs: T[]) => xs[Math.floor(Math.random() * xs.length)];

export async function runChaos(o: {
  rounds: number;
  relays: number;
  endpoints: number;
  say?: (s: string) => void;
}): Promise<ChaosFigures> {
  const say = o.say ?? (() => {});
  const sink = new MailSink();
  const smtp = await sink.listen();
  const pg = await pgDatabase();
  const relayIds = Array.from({ length: o.relays }, (_, i) => `relay-${String.fromCharCode(97 + i)}`);
  const perRelay = Math.ceil(o.endpoints / o.relays);
  const net: Network = await startNetwork({
    name: 'chaos',
    relays: relayIds,
    agentsPerRelay: perRelay,
    heartbeatMs: 1000,
    masterArgs: ['--db', pg.url],
    config: [
      'alerts:',
      '  heartbeatTimeout: 5s',
      'mail:',
      `  smtp: { host: 127.0.0.1, port: ${smtp} }`,
      '  retries: 3',
      '  retryBaseMs: 200',
      'redistribution:',
      '  planOnTicketResolve: true',
      '  autoApprove: true',
    ].join('\n'),
  });
  const figures: ChaosFigures = {
    rounds: o.rounds,
    endpoints: relayIds.length * perRelay,
    relays: o.relays,
    jobs: 0,
    kills: 0,
    diskFaults: 0,
    smtpRefusals: 0,
    tickets: 0,
    mails: 0,
    commandsLost: 0,
    targetsMisreported: 0,
    duplicateInstalls: 0,
    installsInterrupted: 0,
    duplicateMails: 0,
    ticketsNeverMailed: 0,
    jobsNotConverged: 0,
  };
  const masterData = join(net.dir, 'master');
  const masterHost = new URL(net.master.url).host;
  const relayAdmin = (id: string) =>
    new Client({
      baseUrl: net.relays[id].url,
      token: readFileSync(join(net.relays[id].data, 'admin.token'), 'utf8').trim(),
    });
  /** When the master was killed: a ticket mailed twice is explained by a kill between its copies, or not. */
  const masterKills: number[] = [];
  const restartMaster = async () => {
    masterKills.push(Date.now());
    await net.master.kill();
    net.master = await startFanout(
      [
        'master',
        '--data',
        masterData,
        '--listen',
        masterHost,
        '--allow-faults',
        '--db',
        pg.url,
        ...serverTlsArgs(),
        ...caArgs(),
      ],
      { logDir: join(net.dir, 'logs'), name: 'master' },
    );
  };
  const chaos = async (stopAt: number) => {
    while (Date.now() < stopAt) {
      await sleep(300 + Math.random() * 900);
      const what = pick(['relay', 'agent', 'agent', 'master', 'none']);
      try {
        if (what === 'relay') {
          const id = pick(relayIds);
          await net.relays[id].kill();
          await net.startRelay(id, ['--listen', new URL(net.relays[id].url).host]);
        } else if (what === 'agent') {
          const id = pick(Object.keys(net.agents));
          await net.agents[id].kill();
          await net.startAgent(id, id.replace(/-pos-\d+$/, ''));
        } else if (what === 'master') await restartMaster();
        if (what !== 'none') figures.kills++;
      } catch (e) {
        say(`chaos step ${what} failed: ${(e as Error).message}`);
      }
    }
  };
  /** What an operator does until things settle: clear faults, resolve tickets (plans auto-approve), resend mail. */
  const operate = async (jobIds: string[], until: number) => {
    sink.refuse = 0;
    for (const id of relayIds)
      await relayAdmin(id)
        .json('DELETE', 'admin/v1/faults')
        .catch(() => undefined);
    while (Date.now() < until) {
      const jobs = await Promise.all(jobIds.map((j) => net.admin.get(`api/v1/jobs/${j}`).catch(() => undefined)));
      if (jobs.every((j) => j?.state === 'complete')) return true;
      for (const t of await net.admin.get<any[]>('api/v1/tickets').catch(() => [])) {
        if (t.state === 'send_failed') await net.admin.post(`api/v1/tickets/${t.id}/resend`).catch(() => undefined);
        else if (t.state !== 'resolved') await net.admin.post(`api/v1/tickets/${t.id}/resolve`).catch(() => undefined);
      }
      await sleep(1500);
    }
    return false;
  };

  /** The operator waits for the tickets' mail (a claim a killed master held lapses after 15 s). */
  const mailed = async (until: number) => {
    while (Date.now() < until) {
      const tickets = await net.admin.get<any[]>('api/v1/tickets').catch(() => []);
      if (tickets.every((t) => sink.messages.some((m) => m.subject.includes(t.id)))) return;
      for (const t of tickets)
        if (t.state === 'send_failed') await net.admin.post(`api/v1/tickets/${t.id}/resend`).catch(() => undefined);
      await sleep(1000);
    }
  };

  try {
    for (let round = 1; round <= o.rounds; round++) {
      const pkgs = ['a', 'b'].map((x) => {
        const dir = writePackage(
          join(net.dir, 'pkgs', `r${round}${x}`),
          `chaos-${x}`,
          `${round}.0.0`,
          { 'v.txt': `${round}${x}\n` },
          // One line a run; a run after the agent was killed in the middle of one says so.
          // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell parameter expansion
          '#!/bin/sh\necho "$FANOUT_JOB${FANOUT_INTERRUPTED:+ interrupted}" >> ../runs.log\n',
        );
        return dir;
      });
      for (const dir of pkgs) {
        await runFanout(['package', 'build', dir, '-o', `${dir}.tgz`]);
        const p = await runFanout(['package', 'push', `${dir}.tgz`], { env: net.env });
        if (p.code !== 0) throw new Error(`push failed: ${p.stderr}`);
      }
      // This round one relay's disk is full, so its jobs fail DISK_FULL (alert, ticket, mail) until an
      // operator frees it and resolves the ticket; every other round the SMTP server refuses for a while.
      await relayAdmin(relayIds[round % relayIds.length]).post('admin/v1/faults', { 'relay.depot.write': 'ENOSPC' });
      figures.diskFaults++;
      if (round % 2) {
        sink.refuse = 3;
        figures.smtpRefusals++;
      }
      const stopAt = Date.now() + 6000;
      const chaosDone = chaos(stopAt);
      const created = await Promise.all(
        ['a', 'b'].map((x) =>
          net.admin.post<{ jobId: string }>('api/v1/jobs', {
            packages: [`chaos-${x}@${round}.0.0`],
            labels: { role: 'pos' },
          }),
        ),
      );
      const jobIds = created.map((c) => c.jobId);
      figures.jobs += jobIds.length;
      await chaosDone;
      const converged = await operate(jobIds, Date.now() + 90_000);
      await mailed(Date.now() + 45_000);
      if (!converged) figures.jobsNotConverged += jobIds.length;
      await sleep(1500); // reports and mail in flight land
      say(`round ${round}: ${converged ? 'converged' : 'did not converge'}, ${figures.kills} kills so far`);
    }
    await truth(net, relayIds, sink, figures);
    for (const line of mailedTwice(sink, masterKills)) say(line);
  } finally {
    await net.stopAll().catch(() => undefined);
    await sink.close();
    await pg.drop().catch(() => undefined);
  }
  return figures;
}

/**
 * Each ticket mailed more than once to an address: its copies, with their Message-IDs, and the
 * master's kills between them. SMTP cannot be exactly-once: a master killed after the server took a
 * message, before it recorded that, sends it again, with the same Message-ID. A copy with another
 * Message-ID, or with no kill between, is a fault of ours.
 */
function mailedTwice(sink: MailSink, kills: number[]) {
  const copies = new Map<string, SunkMail[]>();
  for (const m of sink.messages)
    for (const to of m.to) {
      const k = `${/t-[a-z0-9]+/.exec(m.subject)?.[0]} to ${to}`;
      copies.set(k, [...(copies.get(k) ?? []), m]);
    }
  return [...copies].flatMap(([k, ms]) => {
    if (ms.length < 2) return [];
    const [first, last] = [Date.parse(ms[0].at), Date.parse(ms[ms.length - 1].at)];
    const between = kills.filter((t) => t >= first && t <= last).map((t) => `${t - first} ms after the first`);
    return [
      `mailed ${ms.length} times: ${k}: ${ms.map((m) => `${m.at.slice(11)} ${m.messageId}`).join(', ')}; ` +
        `master killed between: ${between.join(', ') || 'never'}`,
    ];
  });
}

/** The endpoints' disks, the relays' job logs and the mail sink against what the master says. */
async function truth(net: Network, relayIds: string[], sink: MailSink, f: ChaosFigures) {
  const jobs = await net.admin.get<any[]>('api/v1/jobs');
  const byJob = new Map(jobs.map((j) => [j.jobId, j]));
  // Each package's runs.log on an endpoint: one line a run of its install script, read once.
  const logs = new Map<string, string[]>();
  const runLines = (root: string, name: string) => {
    const file = join(root, name, 'runs.log');
    let lines = logs.get(file);
    if (!lines) logs.set(file, (lines = existsSync(file) ? readFileSync(file, 'utf8').trim().split('\n') : []));
    return lines;
  };
  // Retention removes all but the newest KEEP_VERSIONS installs: an older version is rightly gone
  // once its script ran and that many newer ones did too.
  const pruned = (root: string, p: { name: string; version: string }) => {
    const versions = runLines(root, p.name)
      .flatMap((line) => byJob.get(line.split(' ')[0])?.packages.filter((q: any) => q.name === p.name) ?? [])
      .map((q: any) => q.version);
    return (
      versions.includes(p.version) &&
      new Set(versions.filter((v: string) => major(v) > major(p.version))).size >= KEEP_VERSIONS
    );
  };
  for (const job of jobs) {
    for (const t of job.targets) {
      const root = net.agents[t.deviceId].root;
      const present = (p: any) => existsSync(join(root, p.name, p.version, 'v.txt'));
      const installed = job.packages.every((p: any) => present(p) || pruned(root, p));
      if (t.state === 'installed' ? !installed : job.packages.every(present)) f.targetsMisreported++;
    }
    for (const r of job.relays) {
      const log = join(net.relays[r.relayId].data, 'jobs', `${job.jobId}.jsonl`);
      if (!existsSync(log)) f.commandsLost++;
    }
  }
  for (const id of Object.keys(net.agents)) {
    const root = net.agents[id].root;
    for (const name of existsSync(root) ? readdirSync(root) : []) {
      const lines = runLines(root, name);
      if (!lines.length) continue;
      // A job's scripts run once, and again only when an agent killed mid-run cut them off.
      const plain = lines.filter((l) => !l.endsWith(' interrupted'));
      f.duplicateInstalls += plain.length - new Set(plain).size;
      f.installsInterrupted += lines.length - plain.length;
    }
  }
  const seen = new Map<string, number>();
  for (const m of sink.messages)
    for (const to of m.to) {
      const k = `${/t-[a-z0-9]+/.exec(m.subject)?.[0]} ${to}`;
      seen.set(k, (seen.get(k) ?? 0) + 1);
    }
  f.duplicateMails = [...seen.values()].filter((n) => n > 1).reduce((a, n) => a + n - 1, 0);
  const tickets = await net.admin.get<any[]>('api/v1/tickets');
  f.ticketsNeverMailed = tickets.filter((t) => !sink.messages.some((m) => m.subject.includes(t.id))).length;
  f.tickets = tickets.length;
  f.mails = sink.messages.length;
  void relayIds;
}
