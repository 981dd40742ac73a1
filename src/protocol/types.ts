// The wire contract between master, relays and agents (DESIGN §5).
import { z } from 'zod';
import { DIGEST } from './digest.ts';
import { FAILURE_TYPES } from './failure-types.ts';

export const FailureType = z.enum(FAILURE_TYPES);

export const PackageRef = z.object({
  name: z.string(),
  version: z.string(),
  digest: z.string().regex(DIGEST, 'digests are "sha256:" and 64 lower-case hex digits'),
  size: z.number().int().nonnegative(),
  /** The signed tree hash of the package's files (DESIGN §17). */
  tree: z
    .string()
    .regex(/^[0-9a-f]{64}$/)
    .optional(),
  signature: z.string(),
});
export type PackageRef = z.infer<typeof PackageRef>;

export const JobParams = z
  .object({
    installRoot: z.string().optional(),
    /** At most a day: a timer beyond ~24.8 days would fire at once. */
    timeoutSec: z.coerce.number().positive().max(86_400).optional(),
    preCommand: z.string().optional(),
    postCommand: z.string().optional(),
    deadline: z.string().optional(),
    maxAttempts: z.coerce.number().int().positive().max(100).optional(),
    rateLimitKBps: z.coerce.number().positive().optional(),
    /** Rollbacks may install a lower version than the one installed; nothing else may. */
    allowDowngrade: z.union([z.boolean(), z.enum(['true', 'false']).transform((v) => v === 'true')]).optional(),
    /** An uninstall job: this package is removed from the targets (its uninstall.run first). */
    uninstall: z
      .string()
      .regex(/^[a-z0-9][a-z0-9._-]*$/)
      .optional(),
    /** Install at once, outside the endpoints' maintenance windows. */
    ignoreWindows: z.union([z.boolean(), z.enum(['true', 'false']).transform((v) => v === 'true')]).optional(),
    /** Set on a rollback's job: the job it undoes. */
    rollbackOf: z.string().max(200).optional(),
  })
  .catchall(z.union([z.string(), z.number(), z.boolean()]));
export type JobParams = z.infer<typeof JobParams>;

export const CommandKind = z.enum(['distribute', 'redistribute', 'cancel']);

/** What the master signs of a command: everything but the list itself, which is in `listRoot`. */
export const CommandHeader = z.object({
  commandId: z.string(),
  jobId: z.string(),
  relayId: z.string(),
  kind: CommandKind,
  packages: z.array(PackageRef),
  params: JobParams,
  issuedAt: z.string(),
  expiresAt: z.string(),
  issuedBy: z.string(),
  listRoot: z.string().regex(/^[0-9a-f]{64}$/),
  listSize: z.number().int().positive(),
});
export type CommandHeader = z.infer<typeof CommandHeader>;
export const SignedHeader = z.object({ header: CommandHeader, signature: z.string() });
export type SignedHeader = z.infer<typeof SignedHeader>;

export const DistributionCommand = z.object({
  commandId: z.string(),
  seq: z.number().int(),
  jobId: z.string(),
  relayId: z.string(),
  kind: CommandKind,
  packages: z.array(PackageRef),
  distributionList: z.array(z.string()),
  params: JobParams,
  issuedAt: z.string(),
  issuedBy: z.string(),
  repeats: z.string().optional(),
  // Signed by the master (a relay's own `redistribute` command carries `original` instead).
  expiresAt: z.string().optional(),
  listRoot: z.string().optional(),
  listSize: z.number().int().optional(),
  signature: z.string().optional(),
  /** On a `redistribute` command: the master's signed header of the command it narrows. */
  original: SignedHeader.optional(),
});
export type DistributionCommand = z.infer<typeof DistributionCommand>;

/** An endpoint's attestation: `{"name@version": tree hash}` of what is on its disk (DESIGN §17). */
export const Trees = z.record(z.string().max(400), z.string().max(200)).refine((t) => Object.keys(t).length <= 100, {
  message: 'at most 100 packages',
});
export type Trees = z.infer<typeof Trees>;

/** waiting_window: downloaded and verified, waiting for a maintenance window to install. */
export const TargetState = z.enum(['pending', 'downloading', 'waiting_window', 'installing', 'installed', 'failed']);
export type TargetState = z.infer<typeof TargetState>;
export const RelayJobState = z.enum(['received', 'fetching', 'distributing', 'complete', 'failed']);
export type RelayJobState = z.infer<typeof RelayJobState>;

export const TargetReport = z.object({
  jobId: z.string(),
  deviceId: z.string(),
  state: TargetState,
  attempt: z.number().int().optional(),
  failureType: FailureType.optional(),
  error: z.string().max(4000).optional(),
  at: z.string().optional(),
  trees: Trees.optional(),
});
export type TargetReport = z.infer<typeof TargetReport>;

export const Assignment = z.object({
  assignmentId: z.string(),
  jobId: z.string(),
  commandId: z.string(),
  attempt: z.number().int(),
  kind: CommandKind,
  packages: z.array(PackageRef),
  params: JobParams,
  /** The master's signed header this assignment rests on, and the proof that the device is on its list. */
  authority: SignedHeader,
  proof: z.array(z.string()),
});
export type Assignment = z.infer<typeof Assignment>;

export const Plan = z.object({
  planId: z.string(),
  relayId: z.string(),
  jobId: z.string(),
  repeats: z.string(),
  packages: z.array(PackageRef),
  params: JobParams,
  distributionList: z.array(z.string()),
  original: z.object({
    distributionList: z.array(z.string()),
    installed: z.array(z.string()),
    /** Targets left out because a later job installed a newer version there, each with why. */
    movedOn: z.array(z.object({ deviceId: z.string(), why: z.string() })).optional(),
  }),
  bytesToSend: z.number(),
  bytesInDepot: z.number(),
  /** Missing targets whose endpoints already hold the content verified: nothing is sent to them. */
  targetsHoldingContent: z.number().optional(),
  state: z.enum(['pending', 'approved', 'rejected', 'running', 'complete', 'failed', 'superseded']),
  createdAt: z.string(),
  approvedBy: z.string().optional(),
  commandId: z.string().optional(),
});
export type Plan = z.infer<typeof Plan>;
/** A job a relay made no plan for, and why; `settled` when none will ever be needed (every target not installed moved on). */
export type SkippedJob = { jobId: string; reason: string; settled?: true };

/** An endpoint's re-verification of one installed version (DESIGN §17), passed on by its relay. */
export const VerificationReport = z.object({
  deviceId: z.string(),
  requestId: z.string().max(200).optional(),
  package: z.string().max(200),
  version: z.string().max(200),
  state: z.enum(['ok', 'drift', 'missing']),
  tree: z.string().max(200).optional(),
  detail: z.string().max(4000).optional(),
  at: z.string(),
});
export type VerificationReport = z.infer<typeof VerificationReport>;

export const RelayReport = z.object({
  jobs: z
    .array(
      z.object({
        jobId: z.string(),
        state: RelayJobState,
        failureType: z.string().optional(),
        error: z.string().optional(),
      }),
    )
    .default([]),
  targets: z.array(TargetReport).default([]),
  plans: z.array(Plan).default([]),
  verifications: z.array(VerificationReport).max(10_000).default([]),
  /** When the relay's endpoints last asked it for work: the fleet view's "last seen". */
  seen: z
    .array(z.object({ deviceId: z.string().max(200), at: z.string().max(40) }))
    .max(100_000)
    .default([]),
  /** The relay's clock when it sent this: the master reads `seen` times against its own. */
  sentAt: z.string().max(40).optional(),
});
export type RelayReport = z.infer<typeof RelayReport>;

export const formatZodError = (e: z.ZodError) => e.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
