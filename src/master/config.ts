// fanout.yaml (DESIGN §6): validated once at start, every error listed, then frozen.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import YAML from 'js-yaml';
import { z } from 'zod';
import { AlertsConfigSchema, MailConfigSchema } from '../alerts/config.ts';
import { IntegrationsConfigSchema } from '../alerts/webhooks.ts';
import { DEFAULT_LIMITS } from '../protocol/limits.ts';
import { formatZodError } from '../protocol/types.ts';

export const ConfigSchema = z
  .object({
    alerts: AlertsConfigSchema,
    mail: MailConfigSchema,
    /** The archive rules' limits, for pushes here and (through enrollment) at relays and agents. */
    limits: z
      .object({
        maxUnpackedBytes: z.number().int().positive().default(DEFAULT_LIMITS.maxUnpackedBytes),
        maxFiles: z.number().int().positive().default(DEFAULT_LIMITS.maxFiles),
      })
      .strict()
      .prefault({}),
    integrations: IntegrationsConfigSchema,
    /** Relays' depots (DESIGN §17): past maxBytes, content no open job needs goes, least recently used first. */
    depot: z.object({ maxBytes: z.number().int().positive().optional() }).strict().prefault({}),
    redistribution: z
      .object({ planOnTicketResolve: z.boolean().default(true), autoApprove: z.boolean().default(false) })
      .strict()
      .prefault({}),
  })
  .strict();

export type Config = z.output<typeof ConfigSchema>;

export class ConfigError extends Error {
  override name = 'ConfigError';
  constructor(
    readonly file: string,
    readonly errors: string[],
  ) {
    super(`config ${file} is invalid:\n  ${errors.join('\n  ')}`);
  }
}

export function parseConfig(text: string, file = 'fanout.yaml'): Config {
  let raw: unknown;
  try {
    raw = YAML.load(text, { schema: YAML.CORE_SCHEMA }) ?? {};
  } catch (e) {
    throw new ConfigError(file, [`not valid YAML: ${(e as Error).message}`]);
  }
  const r = ConfigSchema.safeParse(dropNulls(raw));
  if (!r.success) throw new ConfigError(file, formatZodError(r.error));
  return deepFreeze(r.data);
}

/** `--config FILE`, else `<data>/fanout.yaml`, else every default. */
export function loadConfig(dataDir: string, file?: string): Config {
  const path = file ?? join(dataDir, 'fanout.yaml');
  if (!existsSync(path)) {
    if (file) throw new ConfigError(file, ['file not found']);
    return parseConfig('{}');
  }
  return parseConfig(readFileSync(path, 'utf8'), path);
}

/** In YAML `key:` with nothing after it means "not set": let the default apply. */
function dropNulls(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(dropNulls);
  if (v && typeof v === 'object')
    return Object.fromEntries(
      Object.entries(v)
        .filter(([, x]) => x !== null)
        .map(([k, x]) => [k, dropNulls(x)]),
    );
  return v;
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}
