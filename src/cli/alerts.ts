// Commands of the alert center: alerts, failed distributions, tickets, outages, thresholds.
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { cellSafe, quotedLines } from '../common/terminal.ts';
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

// What a device sent stays on its own line (cellSafe), and a message's later lines are marked: none
// can pass for a step of ours.
const one = (v: string | null | undefined) => (v == null ? '-' : cellSafe(v));
const explain = (a: any) =>
  [
    `alert ${a.id} (${a.format} from ${one(a.source)}, ${a.at}): ${a.outcome}`,
    `  device ${one(a.deviceId)}  type ${a.failureType ?? '-'}  location ${a.location ?? '-'}${a.locationReported && a.locationReported !== a.location ? ` (reported "${one(a.locationReported)}")` : ''}  job ${one(a.jobId)}`,
    a.message ? `  message: ${quotedLines(a.message, '         | ')}` : '',
    ...a.steps.map(
      (s: any, i: number) =>
        `  ${String(i + 1).padStart(2)}. ${s.step.padEnd(20)} ${s.outcome}${s.detail ? ` — ${one(s.detail)}` : ''}`,
    ),
  ]
    .filter(Boolean)
    .join('\n');

export function alertCommands(program: Command) {
  const alerts = program.command('alerts').description('send, list and explain alerts');
  withMaster(
    alerts.command('send').description('post alerts as text lines: "TIMESTAMP DEVICE TYPE|- key=value… msg=…"'),
  )
    .option('--text <line>', 'one alert line')
    .option('--file <file>', 'a file of alert lines (- for stdin)')
    .addHelpText(
      'after',
      `
A line: TIMESTAMP DEVICE TYPE|- key=value… msg=…   (msg last; quote values with spaces;
JSON and Alertmanager formats: docs/alerts.md)
  fanout alerts send --text '2026-11-24T19:00:00Z relay-dal DISK_FULL job=j-42 location="Store 42 Dallas TX" msg="ENOSPC writing depot"'
  fanout alerts send --file alerts.log
JSON alerts and Alertmanager webhooks go to POST /api/v1/alerts and /api/v1/alerts/alertmanager.`,
    )
    .action(
      action(async (o: MasterFlags & { text?: string; file?: string }) => {
        let body = o.text;
        if (o.file)
          body =
            o.file === '-'
              ? await new Response(process.stdin as unknown as ReadableStream).text()
              : await readFile(o.file, 'utf8');
        if (!body?.trim()) throw new CliError('give --text LINE or --file FILE');
        const r = await (
          await masterClient(o).raw('POST', 'api/v1/alerts', { body, headers: { 'content-type': 'text/plain' } })
        ).json();
        print(
          o.json,
          r,
          () =>
            `accepted ${r.accepted} alert(s)${r.duplicates ? `, ${r.duplicates} already known` : ''}: ${r.ids.map((id: number, i: number) => `${id} (${r.outcomes[i]})`).join(', ')}`,
        );
      }),
    );
  withPaging(withMaster(alerts.command('list').description('recent alerts with their outcome')))
    .option('--device <id>', "one device's alerts")
    .option('--type <type>', 'one failure type, e.g. DISK_FULL')
    .option(
      '--outcome <outcome>',
      'one outcome: ticket, attached_to_open_ticket, below_threshold, suppressed, inhibited, unknown_device, unparsed, resolved_notice',
    )
    .action(
      action(async (o: MasterFlags) => {
        const r = await masterClient(o).get(listUrl('api/v1/alerts', o, ['device', 'type', 'outcome']));
        print(o.json, r, () => table(r, ['id', 'at', 'deviceId', 'failureType', 'location', 'outcome', 'ticketId']));
      }),
    );
  withMaster(
    alerts.command('show <id>').description('explain an alert step by step: why it did or did not make a ticket'),
  ).action(
    action(async (id: string, o: MasterFlags) => {
      const r = await masterClient(o).get(`api/v1/alerts/${encodeURIComponent(id)}`);
      print(o.json, r, () => explain(r));
    }),
  );

  const failed = program.command('failed').description('failed distributions');
  withPaging(withMaster(failed.command('list').description('failed distributions recorded from alerts')))
    .option('--state <state>', 'open, redistributing, resolved, or unresolved (all but resolved)')
    .option('--relay <id>', "one relay's")
    .option('--job <id>', "one job's")
    .action(
      action(async (o: MasterFlags) => {
        const r = await masterClient(o).get(listUrl('api/v1/failed', o, ['state', 'relay', 'job']));
        print(o.json, r, () =>
          table(r, ['id', 'relayId', 'jobId', 'failureType', 'state', 'alertCount', 'ticketId', 'lastSeen']),
        );
      }),
    );

  const tickets = program.command('tickets').description('job tickets');
  withPaging(withMaster(tickets.command('list').description('tickets with their mail delivery')))
    .option('--state <state>', 'open, sent, send_failed, acknowledged, resolved, or unresolved (all but resolved)')
    .option('--device <id>', "one device's")
    .action(
      action(async (o: MasterFlags) => {
        const r = await masterClient(o).get(listUrl('api/v1/tickets', o, ['state', 'device']));
        print(o.json, r, () =>
          table(r, [
            'id',
            'createdAt',
            'deviceId',
            'failureType',
            'state',
            'centerId',
            'location',
            'mailAttempts',
            'mailError',
          ]),
        );
      }),
    );
  const ticket = program.command('ticket').description('one ticket');
  withMaster(
    ticket
      .command('resolve <id>')
      .description('resolve a ticket; with planOnTicketResolve the relay is asked for a redistribution plan'),
  ).action(
    action(async (id: string, o: MasterFlags) => {
      const r = await masterClient(o).post(`api/v1/tickets/${encodeURIComponent(id)}/resolve`);
      print(
        o.json,
        r,
        () =>
          `ticket ${id} resolved${r.plans.length ? `; plan(s) ${r.plans.map((p: any) => `${p.planId} (${p.state}, ${p.distributionList.length} target(s))`).join(', ')}` : ''}` +
          (r.waiting ?? [])
            .map(
              (w: any) =>
                `\nrelay ${w.relayId} cannot be asked for a plan for job ${w.jobId} now (${w.why}); it is asked again when it is back`,
            )
            .join('') +
          (r.none ?? []).map((n: any) => `\nno plan for job ${n.jobId} on relay ${n.relayId}: ${n.why}`).join(''),
      );
    }),
  );
  withMaster(ticket.command('ack <id>').description('acknowledge a ticket')).action(
    action(async (id: string, o: MasterFlags) => {
      const r = await masterClient(o).post(`api/v1/tickets/${encodeURIComponent(id)}/acknowledge`);
      print(o.json, r, () => `ticket ${id} acknowledged`);
    }),
  );
  withMaster(
    ticket
      .command('resend <id>')
      .description("queue a ticket's mail again, to every recipient not yet reached (a send_failed ticket reopens)"),
  ).action(
    action(async (id: string, o: MasterFlags) => {
      const r = await masterClient(o).post(`api/v1/tickets/${encodeURIComponent(id)}/resend`);
      print(o.json, r, () => `ticket ${id}: mail queued again (${r.state})`);
    }),
  );
}
