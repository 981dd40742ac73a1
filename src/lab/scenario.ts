// The `repair` scenario: distribute → fault → alert → ticket → mail → fix → redistribute.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Progress } from '../common/progress.ts';
import { Client } from '../protocol/client.ts';
import type { Plan } from '../protocol/types.ts';
import { describePlan } from '../relay/plan.ts';
import type { MailSink } from './mail-sink.ts';
import type { LabProcess } from './network.ts';
import { say } from './say.ts';

async function until<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 60_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(250);
  }
}

/** Follows a job on the master with a bar on a terminal, plain lines otherwise. */
async function followJob(admin: Client, jobId: string, label: string, restarted = false) {
  // A redistributed job was `failed` a moment ago: wait for the relay's first report of the new run.
  if (restarted)
    await until(
      'the redistribution to start',
      async () => (await admin.get(`api/v1/jobs/${jobId}`)).state !== 'failed',
      30_000,
    );
  const progress = new Progress(`          ${label}`, process.stdout);
  try {
    for (;;) {
      const j = await admin.get(`api/v1/jobs/${jobId}`);
      progress.update(j.counts.installed ?? 0, j.targets.length, `${j.counts.failed ?? 0} failed`);
      if (j.state !== 'running') return j;
      await sleep(300);
    }
  } finally {
    progress.stop();
  }
}

export async function repairScenario(x: {
  admin: Client;
  relays: Map<string, LabProcess & { data: string }>;
  sink: MailSink;
  interactive: boolean;
}): Promise<boolean> {
  const { admin, relays, sink } = x;
  const [faulty] = [...relays.values()];
  const relayAdmin = new Client({
    baseUrl: faulty.url,
    tls: admin.opts.tls,
    token: readFileSync(join(faulty.data, 'admin.token'), 'utf8').trim(),
  });

  say('step 1/7  distribute pos-app@2.4.1 and pos-config@1.0.0 to every till (label role=pos)');
  const first = await admin.post('api/v1/jobs', {
    packages: ['pos-app@2.4.1', 'pos-config@1.0.0'],
    labels: { role: 'pos' },
  });
  const j1 = await followJob(admin, first.jobId, first.jobId);
  if (j1.state !== 'complete') return (say(`job ${first.jobId} ended ${j1.state}`), false);

  say(`step 2/7  fault: the disk of ${faulty.name} fills up (relay.depot.write=ENOSPC)`);
  await relayAdmin.post('admin/v1/faults', { 'relay.depot.write': 'ENOSPC' });
  const second = await admin.post('api/v1/jobs', { packages: ['pos-app@2.5.0'], labels: { role: 'pos' } });
  say(`          upgrade job ${second.jobId}: pos-app@2.5.0 to every till`);
  const j2 = await followJob(admin, second.jobId, second.jobId);
  say(
    `          job ${second.jobId} ${j2.state}: ${j2.relays.map((r: any) => `${r.relayId} ${r.state}${r.failureType ? ` (${r.failureType})` : ''}`).join(', ')}`,
  );

  say('step 3/7  the relay raised an alert; the alert center made a ticket');
  const ticket = await until('a ticket for the relay', async () =>
    (await admin.get('api/v1/tickets')).find((t: any) => t.deviceId === faulty.name && t.jobs.includes(second.jobId)),
  );
  const alert = (await admin.get('api/v1/alerts')).find((a: any) => a.ticketId === ticket.id);
  for (const s of alert?.steps ?? [])
    say(`          ${s.step.padEnd(20)} ${s.outcome}${s.detail ? ` — ${s.detail}` : ''}`);

  say(`step 4/7  the ticket is mailed to ${ticket.centerId}`);
  const mail = await until('the ticket mail', async () => sink.messages.find((m) => m.subject.includes(ticket.id)));
  say(`          "${mail.subject}" → ${mail.to.join(', ')}`);

  say(`step 5/7  the technician frees the disk on ${faulty.name} and resolves ${ticket.id}`);
  await relayAdmin.json('DELETE', 'admin/v1/faults');
  const resolved = await admin.post(`api/v1/tickets/${ticket.id}/resolve`);
  const plan: Plan | undefined = resolved.plans[0];
  if (!plan) return (say('no redistribution plan came back'), false);
  for (const line of describePlan(plan).split('\n')) say(`          ${line}`);

  say('step 6/7  approve the plan');
  if (x.interactive) {
    say('          approve it in the dashboard (Plans → Approve); the lab approves it itself in 30 s');
    await until(
      'an approval',
      async () => (await admin.get('api/v1/plans')).find((p: any) => p.planId === plan.planId && p.state !== 'pending'),
      30_000,
    ).catch(() => undefined);
  }
  const now = (await admin.get('api/v1/plans')).find((p: any) => p.planId === plan.planId);
  if (now?.state === 'pending') await admin.post(`api/v1/plans/${plan.planId}/approve`, { by: 'lab' });
  else say(`          approved by ${now?.approvedBy}`);

  say('step 7/7  the relay redistributes what is missing');
  const j3 = await followJob(admin, second.jobId, second.jobId, true);
  await until(
    'the repair recorded',
    async () =>
      (await admin.get('api/v1/failed'))
        .filter((f: any) => f.jobId === second.jobId)
        .every((f: any) => f.state === 'resolved'),
    10_000,
  ).catch(() => undefined);
  const failed = (await admin.get('api/v1/failed')).filter((f: any) => f.jobId === second.jobId);
  const t = (await admin.get('api/v1/tickets')).find((tk: any) => tk.id === ticket.id);
  say(
    `          job ${j3.state}; failed distributions ${failed.map((f: any) => f.state).join(', ')}; ticket ${t.state}`,
  );
  return j3.state === 'complete' && failed.every((f: any) => f.state === 'resolved') && t.state === 'resolved';
}
