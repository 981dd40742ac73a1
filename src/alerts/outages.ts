// The outage list: devices or locations whose alerts make no ticket while an outage lasts.
import { z } from 'zod';
import { newId } from '../protocol/crypto.ts';
import { isDuration, parseDuration } from '../protocol/durations.ts';
import { FanoutError } from '../protocol/errors.ts';
import { FIRST_PAGE, type Page } from '../protocol/page.ts';
import { storableTime } from '../protocol/times.ts';
import type { Db } from '../store/index.ts';

export const OutageBody = z
  .object({
    deviceId: z.string().optional(),
    location: z.string().optional(),
    from: z.string().optional(),
    until: z.string(),
    reason: z.string().default(''),
  })
  .refine((o) => !!o.deviceId !== !!o.location, 'give a device or a location, not both');

/** An end given as a time, or as a duration from the start ("2h": two hours after --from). */
function untilOf(text: string, from: number) {
  if (isDuration(text)) {
    try {
      return from + parseDuration(text);
    } catch (e) {
      throw new FanoutError('FANOUT_ERR_INPUT_INVALID', { detail: `--until ${(e as Error).message}` });
    }
  }
  const at = storableTime(text);
  if (!at)
    throw new FanoutError('FANOUT_ERR_INPUT_INVALID', {
      detail: `--until "${text}" is neither a time between 1970 and 9999 nor a duration like 90m, 4h or 2d`,
    });
  return Date.parse(at);
}

export class Outages {
  constructor(private readonly db: Db) {}

  async add(input: unknown) {
    const o = OutageBody.parse(input);
    const fromText = o.from ? storableTime(o.from) : new Date().toISOString();
    if (!fromText)
      throw new FanoutError('FANOUT_ERR_INPUT_INVALID', {
        detail: `--from "${o.from}" is not a time between 1970 and 9999`,
      });
    const from = Date.parse(fromText);
    const until = untilOf(o.until, from);
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

  async list(page: Page = FIRST_PAGE) {
    return (
      await this.db
        .selectFrom('outages')
        .selectAll()
        .orderBy('from_at', 'desc')
        .limit(page.limit)
        .offset(page.offset)
        .execute()
    ).map(outageView);
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
