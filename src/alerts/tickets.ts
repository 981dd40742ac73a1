// Tickets, failed distributions, outages and overrides: what operators read and change at run time.
import { z } from 'zod';
import { newId } from '../protocol/crypto.ts';
import { FanoutError } from '../protocol/errors.ts';
import type { Db } from '../store/index.ts';

export const ticketView = (t: {
  id: string;
  device_id: string;
  failure_type: string;
  state: string;
  center_id: string | null;
  location: string | null;
  mail_attempts: number;
  mail_error: string | null;
  jobs: string;
  alert_ids: string;
  summary: string;
  created_at: string;
  updated_at: string;
}) => ({
  id: t.id,
  deviceId: t.device_id,
  failureType: t.failure_type,
  state: t.state,
  centerId: t.center_id,
  location: t.location,
  mailAttempts: t.mail_attempts,
  mailError: t.mail_error,
  jobs: JSON.parse(t.jobs) as string[],
  alertIds: JSON.parse(t.alert_ids) as string[],
  summary: t.summary,
  createdAt: t.created_at,
  updatedAt: t.updated_at,
});

export class Tickets {
  constructor(private readonly db: Db) {}

  async list() {
    return (await this.db.selectFrom('tickets').selectAll().orderBy('created_at', 'desc').execute()).map(ticketView);
  }

  async get(id: string) {
    const t = await this.db.selectFrom('tickets').selectAll().where('id', '=', id).executeTakeFirst();
    if (!t) throw new FanoutError('FANOUT_ERR_TICKET_UNKNOWN', { id });
    return t;
  }

  async setState(id: string, state: 'acknowledged' | 'resolved') {
    await this.get(id);
    await this.db
      .updateTable('tickets')
      .set({ state, updated_at: new Date().toISOString() })
      .where('id', '=', id)
      .execute();
    return ticketView(await this.get(id));
  }

  /** Failed distributions whose relay/job this ticket covers and that are not yet resolved. */
  async openFailures(ticketId: string) {
    return this.db
      .selectFrom('failed_distributions')
      .selectAll()
      .where('ticket_id', '=', ticketId)
      .where('state', '!=', 'resolved')
      .execute();
  }

  async failedList() {
    const rows = await this.db.selectFrom('failed_distributions').selectAll().orderBy('id', 'desc').execute();
    return rows.map((f) => ({
      id: Number(f.id),
      relayId: f.relay_id,
      jobId: f.job_id,
      failureType: f.failure_type,
      state: f.state,
      ticketId: f.ticket_id,
      firstSeen: f.first_seen,
      lastSeen: f.last_seen,
      alertCount: f.alert_count,
    }));
  }

  async markRedistributing(relayId: string, jobId: string) {
    await this.db
      .updateTable('failed_distributions')
      .set({ state: 'redistributing' })
      .where('relay_id', '=', relayId)
      .where('job_id', '=', jobId)
      .where('state', '=', 'open')
      .execute();
  }

  /** Step 6 of §7: every target installed → records resolved, and the job's tickets closed. */
  async resolveJob(relayId: string, jobId: string) {
    const open = await this.db
      .selectFrom('failed_distributions')
      .select(['id', 'ticket_id'])
      .where('relay_id', '=', relayId)
      .where('job_id', '=', jobId)
      .where('state', '!=', 'resolved')
      .execute();
    if (!open.length) return false;
    const now = new Date().toISOString();
    await this.db.transaction().execute(async (tx) => {
      await tx
        .updateTable('failed_distributions')
        .set({ state: 'resolved', last_seen: now })
        .where(
          'id',
          'in',
          open.map((o) => o.id),
        )
        .execute();
      const ticketIds = [...new Set(open.map((o) => o.ticket_id).filter((t): t is string => !!t))];
      if (ticketIds.length)
        await tx
          .updateTable('tickets')
          .set({ state: 'resolved', updated_at: now })
          .where('id', 'in', ticketIds)
          .where('state', '!=', 'resolved')
          .execute();
    });
    return true;
  }
}

export const OutageBody = z
  .object({
    deviceId: z.string().optional(),
    location: z.string().optional(),
    from: z.string().optional(),
    until: z.string(),
    reason: z.string().default(''),
  })
  .refine((o) => !!o.deviceId !== !!o.location, 'give a device or a location, not both');

export class Outages {
  constructor(private readonly db: Db) {}

  async add(input: unknown) {
    const o = OutageBody.parse(input);
    const from = o.from ? Date.parse(o.from) : Date.now();
    const until = Date.parse(o.until);
    if (Number.isNaN(from))
      throw new FanoutError('FANOUT_ERR_INPUT_INVALID', { detail: `--from "${o.from}" is not a time` });
    if (Number.isNaN(until))
      throw new FanoutError('FANOUT_ERR_INPUT_INVALID', { detail: `--until "${o.until}" is not a time` });
    if (until <= from) throw new FanoutError('FANOUT_ERR_INPUT_INVALID', { detail: '--until must be after --from' });
    if (
      o.deviceId &&
      !(await this.db.selectFrom('devices').select('id').where('id', '=', o.deviceId).executeTakeFirst())
    )
      throw new FanoutError('FANOUT_ERR_DEVICE_UNKNOWN', { ids: o.deviceId });
    if (
      o.location &&
      !(await this.db.selectFrom('locations').select('code').where('code', '=', o.location).executeTakeFirst())
    )
      throw new FanoutError('FANOUT_ERR_LOCATION_UNKNOWN', { code: o.location });
    const row = {
      id: newId('o'),
      device_id: o.deviceId ?? null,
      location: o.location ?? null,
      from_at: new Date(from).toISOString(),
      until_at: new Date(until).toISOString(),
      reason: o.reason,
      created_at: new Date().toISOString(),
    };
    await this.db.insertInto('outages').values(row).execute();
    return outageView(row);
  }

  async list() {
    return (await this.db.selectFrom('outages').selectAll().orderBy('from_at', 'desc').execute()).map(outageView);
  }

  async remove(id: string) {
    const r = await this.db.deleteFrom('outages').where('id', '=', id).executeTakeFirst();
    if (!Number(r.numDeletedRows)) throw new FanoutError('FANOUT_ERR_OUTAGE_UNKNOWN', { id });
  }
}

const outageView = (o: {
  id: string;
  device_id: string | null;
  location: string | null;
  from_at: string;
  until_at: string;
  reason: string;
}) => ({
  id: o.id,
  deviceId: o.device_id,
  location: o.location,
  from: o.from_at,
  until: o.until_at,
  reason: o.reason,
});
