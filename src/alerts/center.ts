// The alert center (DESIGN §6): each alert goes through the ten steps, and keeps each step's outcome.
// Long because the ten steps read best as one straight line, each recording its outcome as it goes.
import { EventEmitter } from 'node:events';
import type { Transaction } from 'kysely';
import { FanoutError } from '../protocol/errors.ts';
import { FIRST_PAGE, type Page } from '../protocol/page.ts';
import type { Database, Db } from '../store/index.ts';
import { alertWriter } from './alert-rows.ts';
import { alertViews } from './alert-view.ts';
import { IntakeBatch, type Stored } from './batch.ts';
import { Classifier } from './classify.ts';
import type { AlertsConfig } from './config.ts';
import { type Failed, relayOf } from './failed-records.ts';
import { GroupCommit } from './group-commit.ts';
import { type IncomingAlert, storableAlert } from './incoming.ts';
import { LocationCache } from './location-cache.ts';
import { requeueMail } from './mailer.ts';
import { thresholdFor } from './thresholds.ts';
import { ticketView } from './ticket-view.ts';
import { createTicket, MAX_TICKET_JOBS, type Step } from './ticketing.ts';
import { type Announce, announceNothing } from './webhooks.ts';
import { TrackWindows } from './windows.ts';

export { alertView } from './alert-view.ts';
export type { Step } from './ticketing.ts';

export interface StoredAlert {
  id: number;
  duplicate: boolean;
  outcome: string;
  ticketId: string | null;
  /** This alert put a ticket mail in the outbox (a new ticket's, or a failed one's again). */
  mailQueued: boolean;
}

type Tx = Transaction<Database>;

/** How an alert ended, as kept on it (`fanout alerts list --outcome`). */
export const ALERT_OUTCOMES = [
  'ticket',
  'attached_to_open_ticket',
  'below_threshold',
  'suppressed',
  'inhibited',
  'unknown_device',
  'unparsed',
  'resolved_notice',
] as const;
type Processed = { stored: Stored; duplicate: boolean; mailQueued: boolean };

export class AlertCenter {
  readonly events = new EventEmitter().setMaxListeners(0);
  /** Queues webhook events in the intake's transaction (main.ts sets it). */
  announce: Announce = announceNothing;
  private readonly classifier: Classifier;
  private readonly windows: TrackWindows;
  private readonly locations = new LocationCache();
  private readonly writeAlert: ReturnType<typeof alertWriter>;
  private readonly intake = new GroupCommit<IncomingAlert, StoredAlert>((alerts) =>
    this.db
      .transaction()
      .execute(async (tx) => {
        await this.exclusive(tx, 'fanout.alerts');
        const batch = await IntakeBatch.load(
          tx,
          alerts,
          this.locations,
          (top) => this.windows.written(top),
          this.writeAlert,
        );
        this.windows.begin(batch.topId);
        const results: Processed[] = [];
        for (const a of alerts) results.push(await this.process(tx, a, batch));
        await batch.finish();
        await this.announceOpened(tx, results);
        return results.map(({ stored, duplicate, mailQueued }) => ({
          id: stored.id!,
          duplicate,
          outcome: stored.outcome,
          ticketId: stored.ticketId,
          mailQueued,
        }));
      })
      .catch((e) => {
        this.windows.forget();
        throw e;
      }),
  );

  constructor(
    private readonly db: Db,
    private readonly cfg: AlertsConfig,
    /** The resolve link of a ticket's mail (links.ts). */
    private readonly resolveLink: (ticketId: string) => string,
    // Other masters on the same database: counters and "one open ticket" need the steps one batch at a time.
    private readonly exclusive: (tx: Tx, name: string) => Promise<void> = async () => {},
  ) {
    this.classifier = new Classifier(cfg.failureTypes);
    this.windows = new TrackWindows(cfg.window);
    this.writeAlert = alertWriter(db);
  }

  /** Stores and processes alerts, one batch at a time: answered only once they are on disk. */
  async ingest(alerts: IncomingAlert[], from?: object): Promise<StoredAlert[]> {
    const out = await this.intake.submit(alerts.map(storableAlert), from);
    if (out.some((r) => !r.duplicate)) this.events.emit('changed');
    if (out.some((r) => r.mailQueued)) this.events.emit('outbox');
    for (const r of out)
      if (!r.duplicate && r.outcome === 'ticket' && r.ticketId) this.events.emit('ticket', r.ticketId);
    return out;
  }

  /** Webhooks' ticket.opened for the tickets this batch opened, in its transaction. */
  private async announceOpened(tx: Tx, results: Processed[]) {
    const opened = results.flatMap((r) =>
      !r.duplicate && r.stored.outcome === 'ticket' && r.stored.ticketId ? [r.stored.ticketId] : [],
    );
    if (!opened.length) return;
    const rows = await tx.selectFrom('tickets').selectAll().where('id', 'in', opened).orderBy('id').execute();
    for (const t of rows) await this.announce(tx, 'ticket.opened', { ticket: ticketView(t) });
  }

  private async process(tx: Tx, a: IncomingAlert, batch: IntakeBatch): Promise<Processed> {
    const dup = batch.duplicateOf(a);
    if (dup) return { stored: dup, duplicate: true, mailQueued: false };

    const steps: Step[] = [];
    const row = {
      source: a.source,
      alert_id: a.alertId,
      received_at: new Date().toISOString(),
      at: a.at,
      raw: a.raw,
      format: a.format,
      device_id: a.deviceId ?? null,
      failure_type: null as string | null,
      location: null as string | null,
      location_reported: a.location ?? null,
      job_id: a.jobId ?? null,
      message: a.message ?? null,
      outcome: '',
      steps: '',
      ticket_id: null as string | null,
      counted: 0,
    };
    const finish = (outcome: (typeof ALERT_OUTCOMES)[number]): Processed => {
      row.outcome = outcome;
      row.steps = JSON.stringify(steps);
      if (row.counted && row.device_id && row.failure_type)
        this.windows.counted(row.device_id, row.failure_type, row.at);
      const mailQueued = steps.some((s) => s.step === 'mail' && s.outcome.startsWith('queued'));
      return { stored: batch.add(row), duplicate: false, mailQueued };
    };

    // 1. parse
    if (a.parseError) {
      steps.push({ step: 'parse', outcome: 'unparsed', detail: a.parseError });
      return finish('unparsed');
    }
    if (a.notice) {
      steps.push({ step: 'parse', outcome: 'notice', detail: a.notice });
      return finish('resolved_notice');
    }
    steps.push({ step: 'parse', outcome: 'ok', detail: `${a.format} alert from ${a.source}` });

    // 2. classify
    const c = this.classifier.classify(a.failureType, a.message);
    row.failure_type = c.failureType;
    const refused = a.undeclared ? `the device declared ${a.undeclared}, not a type this master knows; ` : '';
    steps.push({ step: 'classify', outcome: c.failureType, detail: refused + c.how });

    // 3. identify
    const device = batch.device(a.deviceId!);
    if (!device) {
      steps.push({
        step: 'identify',
        outcome: 'unknown device',
        detail: `"${a.deviceId}" is neither a device id nor a hostname in the inventory`,
      });
      return finish('unknown_device');
    }
    row.device_id = device.id;
    steps.push({
      step: 'identify',
      outcome: device.id,
      detail:
        device.id === a.deviceId ? `device id ${device.id} (${device.kind})` : `hostname ${a.deviceId} is ${device.id}`,
    });

    // 4. normalize location
    const norm = batch.locations.normalize(a.location, device.location);
    row.location = norm.location;
    steps.push({ step: 'normalize', outcome: norm.replaced ? 'replaced' : norm.matched, detail: norm.detail });

    // 5. record the failed distribution
    const relayId = relayOf(a, device);
    let failed: Failed | undefined;
    if (a.jobId && relayId) {
      failed = await batch.failed.count(relayId, a.jobId, c.failureType, a.at);
      steps.push({
        step: 'failed_distribution',
        outcome: 'recorded',
        detail: `job ${a.jobId} on relay ${relayId} (record ${failed.id})`,
      });
    } else steps.push({ step: 'failed_distribution', outcome: 'skipped', detail: 'the alert names no job' });

    // An endpoint whose relay is down says what the relay's RELAY_DOWN already says: kept, not counted.
    const inhibitedBy = device.relay ? await this.relayDownAlert(tx, batch, device.relay) : undefined;
    if (inhibitedBy) {
      steps.push({
        step: 'inhibit',
        outcome: 'inhibited',
        detail: `relay ${device.relay} is down (RELAY_DOWN alert ${inhibitedBy.id} since ${inhibitedBy.at})`,
      });
      return finish('inhibited');
    }

    // 6. track
    row.counted = 1;
    const count = await this.windows.count(tx, device.id, c.failureType, a.at, () => batch.flush());
    steps.push({
      step: 'track',
      outcome: String(count),
      detail: `${count} ${c.failureType} alert(s) for ${device.id} within one ${this.cfg.window / 3_600_000}h window, by their own times`,
    });

    // 7. outage check
    const outage = batch.outageCovering(device, a.at);
    if (outage) {
      steps.push({
        step: 'outage',
        outcome: 'suppressed',
        detail: `outage ${outage.id} (${outage.device_id ?? `location ${outage.location}`}, until ${outage.until_at}): ${outage.reason}`,
      });
      return finish('suppressed');
    }
    steps.push({ step: 'outage', outcome: 'none', detail: 'no outage covers this device or its location now' });

    // 8. threshold
    const limit = thresholdFor(this.cfg, device.id, c.failureType, batch.override(device.id, c.failureType));
    if (count < limit.limit) {
      steps.push({ step: 'threshold', outcome: 'below', detail: `${count} of ${limit.limit} (${limit.source})` });
      return finish('below_threshold');
    }
    steps.push({ step: 'threshold', outcome: 'reached', detail: `${count} of ${limit.limit} (${limit.source})` });

    // 9. ticket
    const open = batch.openTicket(device.id, c.failureType);
    if (open) {
      // The alerts of a ticket are found through alerts.ticket_id; the ticket row only grows by new jobs.
      const jobs: string[] = JSON.parse(open.jobs);
      const unlisted = !!a.jobId && !jobs.includes(a.jobId);
      const full = unlisted && jobs.length >= MAX_TICKET_JOBS;
      if (unlisted && !full) {
        await tx
          .updateTable('tickets')
          .set({ jobs: JSON.stringify([...jobs, a.jobId]), updated_at: row.received_at })
          .where('id', '=', open.id)
          .execute();
        await batch.ticketChanged(open.id);
      }
      if (failed) batch.failed.attach(failed, open.id);
      row.ticket_id = open.id;
      steps.push({
        step: 'ticket',
        outcome: 'attached',
        detail: `ticket ${open.id} is already open for ${device.id} / ${c.failureType}${full ? `; it lists ${MAX_TICKET_JOBS} jobs, the most a ticket lists, so not this one` : ''}`,
      });
      if (open.state === 'send_failed') {
        // Its mail never got through: this alert queues it again.
        await requeueMail(tx, open.id);
        await batch.ticketChanged(open.id);
        steps.push({
          step: 'mail',
          outcome: 'queued again',
          detail: `ticket ${open.id}'s mail had failed; it is queued again`,
        });
      } else
        steps.push({
          step: 'mail',
          outcome: 'not sent',
          detail: `ticket ${open.id}'s mail is ${open.state === 'open' ? 'on its way' : 'already sent'}`,
        });
      return finish('attached_to_open_ticket');
    }
    const ticketId = await createTicket(tx, this.resolveLink, {
      device,
      failureType: c.failureType,
      location: norm.location,
      locationReported: a.location,
      locations: batch.locations,
      a,
      steps,
    });
    await batch.ticketChanged(ticketId);
    if (failed) batch.failed.attach(failed, ticketId);
    row.ticket_id = ticketId;
    return finish('ticket');
  }

  /** The RELAY_DOWN alert of a relay that is down now (its heartbeats stopped and have not resumed). */
  private async relayDownAlert(tx: Tx, batch: IntakeBatch, relayId: string) {
    const since = batch.relayDownSince(relayId);
    if (!since) return undefined;
    await batch.flush();
    const alert = await tx
      .selectFrom('alerts')
      .select(['id', 'at'])
      .where('device_id', '=', relayId)
      .where('failure_type', '=', 'RELAY_DOWN')
      .orderBy('id', 'desc')
      .executeTakeFirst();
    return { id: alert ? Number(alert.id) : 0, at: alert?.at ?? since };
  }

  async get(id: number) {
    const a = await this.db.selectFrom('alerts').selectAll().where('id', '=', id).executeTakeFirst();
    if (!a) throw new FanoutError('FANOUT_ERR_ALERT_UNKNOWN', { id });
    return (await alertViews(this.db, [a]))[0];
  }

  async list(page: Page = FIRST_PAGE, only: { device?: string; type?: string; outcome?: string } = {}) {
    let q = this.db.selectFrom('alerts').selectAll();
    if (only.device) q = q.where('device_id', '=', only.device);
    if (only.type) q = q.where('failure_type', '=', only.type);
    if (only.outcome) q = q.where('outcome', '=', only.outcome);
    const rows = await q.orderBy('id', 'desc').limit(page.limit).offset(page.offset).execute();
    return alertViews(this.db, rows);
  }
}
