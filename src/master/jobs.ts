// Jobs: split by relay into immutable distribution commands; the job view is the sum of relay reports.
import { EventEmitter } from 'node:events';
import { newId } from '../protocol/crypto.ts';
import { FanoutError } from '../protocol/errors.ts';
import { DistributionCommand, JobParams, type PackageRef, type RelayReport } from '../protocol/types.ts';
import type { Db } from '../store/index.ts';
import type { PackageStore } from './packages.ts';
import { savePlans } from './plans.ts';

export interface JobRequest {
  packages: string[];
  targets?: string[];
  labels?: Record<string, string>;
  params?: Record<string, unknown>;
}

export interface TargetView {
  deviceId: string;
  relayId: string;
  state: string;
  attempt: number;
  failureType: string | null;
  error: string | null;
  updatedAt: string;
}
export interface JobView {
  jobId: string;
  state: 'running' | 'complete' | 'failed';
  createdAt: string;
  packages: PackageRef[];
  params: JobParams;
  relays: { relayId: string; state: string; failureType: string | null; error: string | null }[];
  targets: TargetView[];
  counts: Record<string, number>;
}

export function jobState(targets: { state: string }[]): JobView['state'] {
  if (targets.length && targets.every((t) => t.state === 'installed')) return 'complete';
  if (
    targets.some((t) => t.state === 'failed') &&
    targets.every((t) => t.state === 'installed' || t.state === 'failed')
  )
    return 'failed';
  return 'running';
}

export class Jobs {
  /** Emits `commands:<relayId>` when a relay has new commands, `changed` on any job change. */
  readonly events = new EventEmitter().setMaxListeners(0);
  private readonly completeHooks: ((relayId: string, jobId: string) => Promise<void>)[] = [];

  constructor(
    private readonly db: Db,
    private readonly packages: PackageStore,
  ) {}

  onRelayJobComplete(fn: (relayId: string, jobId: string) => Promise<void>) {
    this.completeHooks.push(fn);
  }

  async create(req: JobRequest, createdBy = 'admin'): Promise<{ jobId: string; commands: string[] }> {
    if (!req.packages?.length)
      throw new FanoutError('FANOUT_ERR_INPUT_INVALID', { detail: 'a job needs at least one --package NAME@VERSION' });
    const params = JobParams.parse(req.params ?? {});
    if (params.deadline && !/^\d+(s|m|h)$/.test(params.deadline) && Number.isNaN(Date.parse(params.deadline)))
      throw new FanoutError('FANOUT_ERR_INPUT_INVALID', {
        detail: `deadline "${params.deadline}" is neither an ISO-8601 time nor a duration like 30m`,
      });
    const packages = await Promise.all(req.packages.map((p) => this.packages.resolve(p)));
    const devices = await this.db.selectFrom('devices').select(['id', 'kind', 'relay', 'labels']).execute();
    const byId = new Map(devices.map((d) => [d.id, d]));
    let targets: typeof devices;
    if (req.targets?.length) {
      const unknown = req.targets.filter((t) => byId.get(t)?.kind !== 'endpoint');
      if (unknown.length)
        throw new FanoutError('FANOUT_ERR_DEVICE_UNKNOWN', { ids: `${unknown.join(', ')} (as endpoints)` });
      targets = [...new Set(req.targets)].map((t) => byId.get(t)!);
    } else if (req.labels && Object.keys(req.labels).length) {
      targets = devices.filter((d) => {
        const labels = JSON.parse(d.labels) as Record<string, string>;
        return d.kind === 'endpoint' && Object.entries(req.labels!).every(([k, v]) => labels[k] === v);
      });
    } else throw new FanoutError('FANOUT_ERR_JOB_NO_TARGETS', { why: 'a job needs --target ID… or --label k=v…' });
    if (!targets.length)
      throw new FanoutError('FANOUT_ERR_JOB_NO_TARGETS', {
        why: `no endpoint matches the labels ${JSON.stringify(req.labels)}`,
      });

    const jobId = newId('j');
    const now = new Date().toISOString();
    const byRelay = new Map<string, string[]>();
    for (const t of targets) byRelay.set(t.relay!, [...(byRelay.get(t.relay!) ?? []), t.id]);
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
        })
        .execute();
      for (const [relayId, list] of byRelay) {
        const commandId = newId('c');
        commandIds.push(commandId);
        const body = {
          commandId,
          jobId,
          relayId,
          kind: 'distribute',
          packages,
          distributionList: list,
          params,
          issuedAt: now,
          issuedBy: createdBy,
        };
        await tx
          .insertInto('commands')
          .values({
            command_id: commandId,
            job_id: jobId,
            relay_id: relayId,
            kind: 'distribute',
            body: JSON.stringify(body),
            issued_at: now,
            acked_at: null,
          })
          .execute();
        for (const deviceId of list)
          await tx
            .insertInto('targets')
            .values({
              job_id: jobId,
              device_id: deviceId,
              relay_id: relayId,
              state: 'pending',
              attempt: 0,
              failure_type: null,
              error: null,
              updated_at: now,
            })
            .execute();
        await tx
          .insertInto('relay_jobs')
          .values({
            job_id: jobId,
            relay_id: relayId,
            state: 'issued',
            failure_type: null,
            error: null,
            updated_at: now,
          })
          .execute();
      }
    });
    for (const relayId of byRelay.keys()) this.events.emit(`commands:${relayId}`);
    this.events.emit('changed');
    return { jobId, commands: commandIds };
  }

  /** Commands for a relay after `after`; waits up to waitMs for one to appear. */
  async commandsFor(relayId: string, after: number, waitMs: number): Promise<DistributionCommand[]> {
    const read = async () => {
      const rows = await this.db
        .selectFrom('commands')
        .select(['seq', 'body'])
        .where('relay_id', '=', relayId)
        .where('seq', '>', after)
        .orderBy('seq')
        .limit(100)
        .execute();
      return rows.map((r) => DistributionCommand.parse({ ...JSON.parse(r.body), seq: Number(r.seq) }));
    };
    const now = await read();
    if (now.length || waitMs <= 0) return now;
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.events.off(`commands:${relayId}`, done);
        resolve();
      };
      const timer = setTimeout(done, waitMs);
      this.events.on(`commands:${relayId}`, done);
    });
    return read();
  }

  async ack(relayId: string, commandIds: string[]) {
    if (!commandIds.length) return;
    await this.db
      .updateTable('commands')
      .set({ acked_at: new Date().toISOString() })
      .where('relay_id', '=', relayId)
      .where('command_id', 'in', commandIds)
      .where('acked_at', 'is', null)
      .execute();
  }

  async applyReport(relayId: string, report: RelayReport) {
    const now = new Date().toISOString();
    const touched = new Set<string>();
    await this.db.transaction().execute(async (tx) => {
      for (const j of report.jobs) {
        touched.add(j.jobId);
        await tx
          .updateTable('relay_jobs')
          .set({ state: j.state, failure_type: j.failureType ?? null, error: j.error ?? null, updated_at: now })
          .where('job_id', '=', j.jobId)
          .where('relay_id', '=', relayId)
          .execute();
      }
      for (const t of report.targets) {
        touched.add(t.jobId);
        // A relay can only speak for targets it was given.
        await tx
          .updateTable('targets')
          .set({
            state: t.state,
            attempt: t.attempt ?? 0,
            failure_type: t.state === 'failed' ? (t.failureType ?? 'UNKNOWN') : null,
            error: t.error ?? null,
            updated_at: t.at ?? now,
          })
          .where('job_id', '=', t.jobId)
          .where('device_id', '=', t.deviceId)
          .where('relay_id', '=', relayId)
          .execute();
      }
      await savePlans(tx, relayId, report.plans);
    });
    for (const jobId of touched) {
      const targets = await this.db
        .selectFrom('targets')
        .select('state')
        .where('job_id', '=', jobId)
        .where('relay_id', '=', relayId)
        .execute();
      if (targets.length && targets.every((t) => t.state === 'installed'))
        for (const hook of this.completeHooks) await hook(relayId, jobId);
    }
    if (touched.size || report.plans.length) this.events.emit('changed');
  }

  async view(jobId: string): Promise<JobView> {
    const job = await this.db.selectFrom('jobs').selectAll().where('id', '=', jobId).executeTakeFirst();
    if (!job) throw new FanoutError('FANOUT_ERR_JOB_UNKNOWN', { jobId, where: '' });
    const [targets, relays] = await Promise.all([
      this.db.selectFrom('targets').selectAll().where('job_id', '=', jobId).orderBy('device_id').execute(),
      this.db.selectFrom('relay_jobs').selectAll().where('job_id', '=', jobId).orderBy('relay_id').execute(),
    ]);
    const counts: Record<string, number> = {};
    for (const t of targets) counts[t.state] = (counts[t.state] ?? 0) + 1;
    return {
      jobId,
      state: jobState(targets),
      createdAt: job.created_at,
      packages: JSON.parse(job.packages),
      params: JSON.parse(job.params),
      relays: relays.map((r) => ({ relayId: r.relay_id, state: r.state, failureType: r.failure_type, error: r.error })),
      targets: targets.map((t) => ({
        deviceId: t.device_id,
        relayId: t.relay_id,
        state: t.state,
        attempt: t.attempt,
        failureType: t.failure_type,
        error: t.error,
        updatedAt: t.updated_at,
      })),
      counts,
    };
  }

  async list(limit = 100) {
    const jobs = await this.db.selectFrom('jobs').select('id').orderBy('created_at', 'desc').limit(limit).execute();
    return Promise.all(jobs.map((j) => this.view(j.id)));
  }
}
