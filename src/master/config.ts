// fanout.yaml (DESIGN §6): validated once at start, every error listed, then frozen.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import YAML from 'yaml';
import { z } from 'zod';
import { formatZodError } from '../protocol/types.ts';

const duration = z
  .union([z.number().positive(), z.string().regex(/^\d+(ms|s|m|h|d)$/, 'a duration like 30s, 15m, 24h or 7d')])
  .transform((v) => (typeof v === 'number' ? v : parseDuration(v)));

export function parseDuration(s: string): number {
  const m = /^(\d+)(ms|s|m|h|d)$/.exec(s);
  if (!m) throw new Error(`"${s}" is not a duration like 30s, 15m, 24h or 7d`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 'ms'];
  return Number(m[1]) * unit;
}

const FailureType = z
  .object({ threshold: z.number().int().positive().optional(), patterns: z.array(z.string()).default([]) })
  .strict();

export const ConfigSchema = z
  .object({
    alerts: z
      .object({
        window: duration.default(86_400_000),
        defaultThreshold: z.number().int().positive().default(1),
        failureTypes: z
          .record(z.string().regex(/^[A-Z][A-Z0-9_]*$/, 'failure types are UPPER_SNAKE_CASE'), FailureType)
          .default({
            DISK_FULL: { threshold: 1, patterns: ['no space left', 'ENOSPC'] },
            UNREACHABLE: { threshold: 3, patterns: ['ECONNREFUSED', 'ECONNRESET', 'timed out', 'unreachable'] },
            DIGEST_MISMATCH: { threshold: 1, patterns: ['digest mismatch', 'signature'] },
          }),
        deviceOverrides: z.record(z.string(), z.record(z.string(), z.number().int().positive())).default({}),
        heartbeatTimeout: duration.default(15_000),
      })
      .strict()
      .prefault({}),
    mail: z
      .object({
        smtp: z
          .object({
            host: z.string().default('127.0.0.1'),
            port: z.number().int().min(1).max(65535).default(25),
            secure: z.boolean().default(false),
          })
          .strict()
          .prefault({}),
        from: z.string().default('fanout@example.test'),
        retries: z.number().int().min(0).default(5),
        retryBaseMs: z.number().int().min(1).default(1000),
        publicUrl: z.string().optional(),
      })
      .strict()
      .prefault({}),
    redistribution: z
      .object({ planOnTicketResolve: z.boolean().default(true), autoApprove: z.boolean().default(false) })
      .strict()
      .prefault({}),
  })
  .strict();

export type Config = z.output<typeof ConfigSchema>;

export class ConfigError extends Error {
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
    raw = YAML.parse(text) ?? {};
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
