// The inventory file (DESIGN §3), read entry by entry: an entry that does not validate is reported
// together with the reference errors of the others, and nothing is imported while any error stands.
import YAML from 'js-yaml';
import { z } from 'zod';
import { FanoutError } from '../protocol/errors.ts';
import { formatZodError } from '../protocol/types.ts';
import { parseCron } from '../protocol/windows.ts';

const Center = z
  .object({ id: z.string().min(1), name: z.string().min(1), email: z.array(z.string().email()).min(1) })
  .strict();
const Location = z.object({ code: z.string().min(1), name: z.string().min(1), center: z.string().min(1) }).strict();
const Device = z
  .object({
    id: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'ids are letters, digits, dot, dash and underscore'),
    kind: z.enum(['relay', 'endpoint']),
    location: z.string().min(1),
    relay: z.string().optional(),
    upstream: z.string().optional(),
    // Alerts name devices by hostname, and carry a NUL as U+FFFD: no real hostname has a control character.
    hostname: z
      .string()
      .refine((h) => !/\p{Cc}/u.test(h), 'a hostname has no control characters')
      .optional(),
    /** Relays: a cap on what the relay fetches from upstream and serves in all (DESIGN §13). */
    rateLimitKBps: z.number().positive().max(10_000_000).optional(),
    /** Endpoints: relays to turn to, in order, when their own is unreachable (DESIGN §13). */
    fallbackRelays: z.array(z.string()).max(10).optional(),
    labels: z.record(z.string(), z.string()).default({}),
  })
  .strict();
/** A maintenance window (DESIGN §13): for a location or a label, a cron start, a duration, a time zone. */
const Window = z
  .object({
    location: z.string().min(1).optional(),
    label: z
      .string()
      .regex(/^[^=\s]+=[^=\s]*$/, 'a label is key=value')
      .optional(),
    cron: z.string().refine(
      (c) => {
        try {
          parseCron(c);
          return true;
        } catch {
          return false;
        }
      },
      { message: 'a cron expression of 5 fields: minute hour day-of-month month day-of-week (e.g. "0 2 * * *")' },
    ),
    duration: z.string().regex(/^\d+(m|h)$/, 'a duration like 90m or 2h'),
    tz: z
      .string()
      .refine(
        (tz) => {
          try {
            new Intl.DateTimeFormat('en', { timeZone: tz });
            return true;
          } catch {
            return false;
          }
        },
        { message: 'an IANA time zone, e.g. America/Chicago' },
      )
      .default('UTC'),
  })
  .strict()
  .refine((w) => !!w.location !== !!w.label, { message: 'a window is for a location or a label, one of the two' });

const Top = z
  .object({
    windows: z.array(z.unknown()).optional(),
    centers: z.array(z.unknown()).default([]),
    locations: z.array(z.unknown()).default([]),
    devices: z.array(z.unknown()).default([]),
  })
  .strict();
export interface InventoryFile {
  centers: z.infer<typeof Center>[];
  locations: z.infer<typeof Location>[];
  devices: z.infer<typeof Device>[];
  /** Given: the inventory's maintenance windows replace the stored ones. */
  windows?: z.infer<typeof Window>[];
  /** Errors of entries that did not validate: reported with the reference errors of the rest. */
  errors: string[];
  /** Where each kept entry stood in the file, so errors name it by its own index. */
  positions: { centers: number[]; locations: number[]; devices: number[]; windows: number[] };
}

export const invalidText = (e: unknown) =>
  new FanoutError('FANOUT_ERR_INVENTORY_INVALID', { errors: `not valid YAML or JSON: ${(e as Error).message}` }, [
    `not valid YAML or JSON: ${(e as Error).message}`,
  ]);

const parseText = (text: string): unknown =>
  text.trimStart().startsWith('{') ? JSON.parse(text) : YAML.load(text, { schema: YAML.CORE_SCHEMA });

export async function parseInventory(text: string): Promise<InventoryFile> {
  let raw: unknown;
  try {
    raw = parseText(text);
  } catch (e) {
    throw invalidText(e);
  }
  return validateInventory(raw);
}

/** Checks a parsed inventory entry by entry, giving the event loop a turn every few thousand. */
export async function validateInventory(raw: unknown): Promise<InventoryFile> {
  const top = Top.safeParse(raw ?? {});
  if (!top.success)
    throw new FanoutError(
      'FANOUT_ERR_INVENTORY_INVALID',
      { errors: formatZodError(top.error).join('\n  ') },
      formatZodError(top.error),
    );
  // Entry by entry, so that schema errors and reference errors are listed together.
  const errors: string[] = [];
  const positions = {
    centers: [] as number[],
    locations: [] as number[],
    devices: [] as number[],
    windows: [] as number[],
  };
  const each = async <T>(list: unknown[], schema: z.ZodType<T>, name: keyof typeof positions) => {
    const out: T[] = [];
    for (let i = 0; i < list.length; i++) {
      if (i % 5000 === 4999) await new Promise((r) => setImmediate(r));
      const r = schema.safeParse(list[i]);
      if (r.success) {
        positions[name].push(i);
        out.push(r.data);
      } else errors.push(...formatZodError(r.error).map((m) => `${name}.${i}.${m}`));
    }
    return out;
  };
  return {
    centers: await each(top.data.centers, Center, 'centers'),
    locations: await each(top.data.locations, Location, 'locations'),
    devices: await each(top.data.devices, Device, 'devices'),
    ...(top.data.windows ? { windows: await each(top.data.windows, Window, 'windows') } : {}),
    errors,
    positions,
  };
}
