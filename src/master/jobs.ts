// Jobs: split by relay into immutable distribution commands; the job view is the sum of relay reports.
import { EventEmitter } from 'node:events';
import { type Announce, announceNothing } from '../alerts/webhooks.ts';
import { DEFAULT_EXPIRY_MS, signCommand } from '../protocol/command.ts';
import { newId } from '../protocol/crypto.ts';
import { deadlineAt } from '../protocol/durations.ts';
import { FanoutError } from '../protocol/errors.ts';
import type { RelayReport } from '../protocol/types.ts';
import type { Db } from '../store/index.ts';
import { jobPackages, wrongTrees } from './attestation.ts';
import { queueCommand } from './commands.ts';
import { jobParams, selectTargets } from './job-request.ts';
import type { Change } from './job-view.ts';
import type { PackageStore } from './packages.ts';
import { savePlans } from './plan-rows.ts';
import { completeAt, recordComplete, type TargetRow, writeTargets } from './target-writes.ts';

/** Target rows a statement: well under SQLite's and PostgreSQL's limits on bound values. */
const TARGET_ROWS = 500;

export interface JobRequest {
  packages: string[];
  targets?: string[];
  labels?: Record<string, string>;
  params?: Record<string, unknown>;
}

export class Jobs {
  /** Emits `commands:<relayId>` when a relay has new commands, `changed` on any job change. */
  readonly events = new EventEmitter().setMaxListeners(0);
  private readonly completeHooks: ((relayId: string, jobId: string) => Promise<void>)[] = [];
  /** Queues webhook events in the report's transaction (main.ts sets it). */
  announce: Announce = announceNothing;

  constructor(
    private readonly db: Db,
    private readonly packages: PackageStore,
    private readonly signingKey: () => string,
    /** Tells every master that relays have new commands (PostgreSQL NOTIFY; locally with SQLite). */
    private readonly notify: (relayIds: string) => Promise<void> = async (ids) => {
      for (const id of ids.split(',')) this.events.emit(`commands:${id}`);
    },
  ) {}

  onRelayJobComplete(fn: (relayId: string, jobId: string) => Promise<void>) {
    this.completeHooks.push(fn);
  }

  /**
   * `jobId`: chosen beforehand by a caller that must create the job once (a rollout's ring, which
   * names its rollout as `rolloutId`).
   */
  async create(
    req: JobRequest,
    createdBy = 'admin',
    jobId = newId('j'),
    rolloutId?: string,
  ): Promise<{ jobId: string; commands: string[] }> {
    if (!req.packages?.length && !req.params?.uninstall)
      throw new FanoutError('FANOUT_ERR_INPUT_INVALID', { detail: 'a job needs at least one --package NAME@VERSION' });
    const params = jobParams(req.params);
    const packages = await Promise.all(req.packages.map((p) => this.packages.resolve(p)));
    const targets = await selectTargets(this.db, req);

    const now = new Date().toISOString();
    const byRelay = new Map<string, string[]>();
    for (const t of targets) {
      const list = byRelay.get(t.relay!);
      if (list) list.push(t.id);
      else byRelay.set(t.relay!, [t.id]);
    }
    const commandIds: string[] = [];
    await this.db.transaction().execute(async (tx) => {
      await tx
        .insertInto('jobs')
        .values({
          id: jobId,
          packages: JSON.stringify(packages),
          params: JSON.stringify(params),
          created_at: now,
          created_by: createdBy,
          rollout_id: rolloutId ?? null,
        })
        .execute();
      for (const [relayId, list] of byRelay) {
        const commandId = newId('c');
        commandIds.push(commandId);
        // Signed whole: packages, params, job, relay, kind, times and the list's Merkle root.
        const expiresAt = new Date(
          deadlineAt(params.deadline ? String(params.deadline) : undefined, now, DEFAULT_EXPIRY_MS),
        ).toISOString();
        const body = signCommand(
          this.signingKey(),
          {
            commandId,
            seq: 0,
            jobId,
            relayId,
            kind: 'distribute',
            packages,
            distributionList: list,
            params,
            issuedAt: now,
            issuedBy: createdBy,
          },
          expiresAt,
        );
        await queueCommand(tx, body);
        // Many rows a statement: one statement per target made a 10,000-device job take 0.4 s here.
        for (let i = 0; i < list.length; i += TARGET_ROWS)
          await tx
            .insertInto('targets')
            .values(
              list.slice(i, i + TARGET_ROWS).map((deviceId) => ({
                job_id: jobId,
                device_id: deviceId,
                relay_id: relayId,
                state: 'pending' as const,
                attempt: 0,
                failure_type: null,
                error: null,
                updated_at: now,
              })),
            )
            .execute();
      }
    });
    // Every master on the database wakes the long-polls of these relays (DESIGN §15).
    await this.notify([...byRelay.keys()].join(','));
    this.events.emit('changed', { jobs: [jobId], lists: ['fleet'] } satisfies Change);
    return { jobId, commands: commandIds };
  }

  async applyReport(relayId: string, report: RelayReport) {
    const now = new Date().toISOString();
    const touched = new Set<string>();
    for (const j of report.jobs) touched.add(j.jobId);
    for (const t of report.targets) touched.add(t.jobId);
    // Complete here after this report; announced (job.complete) once, by the master that records it.
    const complete = await this.db.transaction().execute(async (tx) => {
      for (const j of report.jobs) {
        // A relay speaks only for jobs it was sent a command of.
        const sent = await tx
          .selectFrom('commands')
          .select('command_id')
          .where('job_id', '=', j.jobId)
          .where('relay_id', '=', relayId)
          .executeTakeFirst();
        if (!sent) continue;
        const row = { state: j.state, failure_type: j.failureType ?? null, error: j.error ?? null, updated_at: now };
        await tx
          .insertInto('relay_jobs')
          .values({ job_id: j.jobId, relay_id: relayId, ...row })
          .onConflict((oc) => oc.columns(['job_id', 'relay_id']).doUpdateSet(row))
          .execute();
      }
      // A relay can only speak for targets it was given; `installed` only with the signed trees attested.
      const packagesOf = jobPackages(tx);
      const rows: TargetRow[] = [];
      for (const t of report.targets) {
        const tampered = t.state === 'installed' ? await wrongTrees(packagesOf, t) : undefined;
        if (tampered) Object.assign(t, { state: 'failed', failureType: 'TAMPERED', error: tampered });
        rows.push({
          job_id: t.jobId,
          device_id: t.deviceId,
          state: t.state,
          attempt: t.attempt ?? 0,
          failure_type: t.state === 'failed' ? (t.failureType ?? 'UNKNOWN') : null,
          error: t.error ?? null,
          updated_at: t.at ?? now,
          attestation: t.trees ? JSON.stringify(t.trees) : null,
        });
      }
      await writeTargets(tx, relayId, rows);
      await savePlans(tx, relayId, report.plans);
      const after = await completeAt(tx, relayId, [...touched]);
      for (const jobId of await recordComplete(tx, relayId, after, now))
        await this.announce(tx, 'job.complete', { jobId, relayId });
      return after;
    });
    // The hooks (resolving the repaired job's records and tickets) do nothing twice, and run at each
    // report of a complete job: a master that stopped before them catches up at the next one.
    const completed = complete.size > 0;
    for (const jobId of complete) for (const hook of this.completeHooks) await hook(relayId, jobId);
    // A completed job may have resolved failed distributions, tickets and plans.
    if (touched.size || report.plans.length)
      this.events.emit('changed', {
        jobs: [...touched],
        lists: [
          'fleet',
          ...(report.plans.length || completed ? (['plans'] as const) : []),
          ...(completed ? (['failed', 'tickets'] as const) : []),
        ],
      } satisfies Change);
  }
}
