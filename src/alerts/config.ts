// The alert center's slice of fanout.yaml (DESIGN §6): alerts and mail. master/config.ts composes it.
import { z } from 'zod';
import { MAX_DURATION_MS, parseDuration } from '../protocol/durations.ts';
import { FAILURE_TYPE_NAME } from '../protocol/failure-types.ts';

/** A config value: a duration string or a number of milliseconds. */
const durationSchema = z.union([z.number().positive().max(MAX_DURATION_MS), z.string()]).transform((v, ctx) => {
  if (typeof v === 'number') return v;
  try {
    return parseDuration(v);
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: (e as Error).message });
    return z.NEVER;
  }
});

const FailureTypeRule = z
  .object({ threshold: z.number().int().positive().max(100_000).optional(), patterns: z.array(z.string()).default([]) })
  .strict();

export const DEFAULT_FAILURE_TYPES = {
  DISK_FULL: { threshold: 1, patterns: ['no space left', 'ENOSPC'] },
  UNREACHABLE: { threshold: 3, patterns: ['ECONNREFUSED', 'ECONNRESET', 'timed out', 'unreachable'] },
  DIGEST_MISMATCH: { threshold: 1, patterns: ['digest mismatch', 'signature'] },
};

export const AlertsConfigSchema = z
  .object({
    window: durationSchema.default(86_400_000),
    defaultThreshold: z.number().int().positive().max(100_000).default(1),
    failureTypes: z
      .record(z.string().regex(FAILURE_TYPE_NAME, 'failure types are UPPER_SNAKE_CASE'), FailureTypeRule)
      .default({})
      // A type named here replaces that type's default rule; the other defaults stay.
      .transform((given): Record<string, z.output<typeof FailureTypeRule>> => ({ ...DEFAULT_FAILURE_TYPES, ...given })),
    // Per device and failure type; a type in another case would never match an alert's.
    deviceOverrides: z
      .record(
        z.string(),
        z.record(
          z.string().regex(FAILURE_TYPE_NAME, 'failure types are UPPER_SNAKE_CASE'),
          z.number().int().positive().max(100_000),
        ),
      )
      .default({}),
    heartbeatTimeout: durationSchema.default(15_000),
  })
  .strict()
  .prefault({});

export const MailConfigSchema = z
  .object({
    smtp: z
      .object({
        host: z.string().default('127.0.0.1'),
        port: z.number().int().min(1).max(65535).default(25),
        secure: z.boolean().default(false),
        /** The SMTP server's certificate is checked (STARTTLS or `secure`); `ca` for a private CA. */
        tls: z
          .object({ rejectUnauthorized: z.boolean().default(true), ca: z.string().optional() })
          .strict()
          .prefault({}),
      })
      .strict()
      .prefault({}),
    from: z.string().default('fanout@example.test'),
    retries: z.number().int().min(0).max(100).default(5),
    retryBaseMs: z.number().int().min(1).max(3_600_000).default(1000),
    /** A mail still not delivered this long after its first attempt is given up (send_failed). */
    giveUpAfter: durationSchema.default(86_400_000),
    publicUrl: z.string().optional(),
    /** How long the resolve link in a ticket mail works. */
    resolveLinkTtl: durationSchema.default(7 * 86_400_000),
  })
  .strict()
  .prefault({});

export type AlertsConfig = z.output<typeof AlertsConfigSchema>;
export type MailConfig = z.output<typeof MailConfigSchema>;
