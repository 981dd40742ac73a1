// Rollouts in rings (DESIGN §13): targets are dealt into rings in a stable order (by device id); each
// ring is a job of its own. The next ring starts when the current one has ended and the wait has
// passed; a ring that failed past the limit halts the rollout and raises ROLLOUT_HALTED through the
// alert center. An operator resumes (the next ring starts) or aborts (the running ring is cancelled).

import type { Faults } from '../common/faults.ts';
import { every, type Ticker } from '../common/ticker.ts';
import { newId } from '../protocol/crypto.ts';
import { FanoutError } from '../protocol/errors.ts';
import type { Db } from '../store/index.ts';
import type { CancelJob } from './cancel.ts';
import { selectTargets } from './job-request.ts';
import { heldRollout, jobView } from './job-view.ts';
import type { JobRequest, Jobs } from './jobs.ts';
import type { RaiseAlert } from './relays.ts';
import { dealRings, type Ring } from './rings.ts';
import {
  type RolloutChange,
  type RolloutRow,
  raiseHalted,
  refusedForGood,
  ringJob,
  rolloutRow,
  saveRollout,
} from './rollout-rows.ts';
import { rolloutView } from './rollout-view.ts';

export interface RolloutRequest extends JobRequest {
  /** Cumulative shares of the targets, e.g. [1, 10, 50, 100]. */
  rings: number[];
  haltOnFailureRate?: number;
  ringWaitMs?: number;
}

export class Rollouts {
  private ticker?: Ticker;
  constructor(
    private readonly db: Db,
    private readonly jobs: Jobs,
    private readonly raise: RaiseAlert,
    private readonly cancel: CancelJob,
    private readonly faults: Faults,
  ) {}

  async create(req: RolloutRequest, by: string) {
    const bad = req.rings.find((p, i) => !(p > 0 && p <= 100) || (i > 0 && p <= req.rings[i - 1]));
    if (bad !== undefined || req.rings.at(-1) !== 100)
      throw new FanoutError('FANOUT_ERR_INPUT_INVALID', {
        detail: `--rings must rise from above 0% to 100% (e.g. 1%,10%,50%,100%), not ${req.rings.map((r) => `${r}%`).join(',')}`,
      });
    const targets = await selectTargets(this.db, req);
    const rings: Ring[] = dealRings(
      targets.map((t) => t.id),
      req.rings,
    ).map((devices, i) => ({ percent: req.rings[i], devices, jobId: null, endedAt: null, failureRate: null }));
    const id = newId('j');
    // As every ring: the rollout with its first ring's job id first, then the job. A master that
    // stops in between leaves a rollout whose next tick creates the job, never a job without its rollout.
    rings[0].jobId = newId('j');
    const row = rolloutRow(id, req, rings, by);
    await this.db.insertInto('rollouts').values(row).execute();
    this.faults.throwIf('rollout.first');
    await this.createRingJob(row, rings[0]).catch(async (e) => {
      // Refused (an unknown package, say): the operator is told, and no rollout is left behind. Any
      // other failure is the master's: the rollout stays, and the next tick creates the job.
      if (refusedForGood(e)) await this.db.deleteFrom('rollouts').where('id', '=', id).execute();
      throw e;
    });
    return rolloutView(this.db, id);
  }

  async find(id: string) {
    return this.db.selectFrom('rollouts').selectAll().where('id', '=', id).executeTakeFirst();
  }

  private save(r: RolloutRow, set: RolloutChange) {
    return saveRollout(this.db, r, set);
  }

  /**
   * Starts ring `n`: its job's id is saved first, then the job is created under it. A master that
   * stops in between leaves the id, and the next tick creates the job (ringJobOf); of two that start
   * the ring at once, one saves and creates, and the other's save finds the rollout changed.
   */
  private async startRing(r: RolloutRow, rings: Ring[], n: number) {
    rings[n].jobId = newId('j');
    if (!(await this.save(r, { rings, current: n, state: 'running', reason: null }))) return;
    this.faults.throwIf('rollout.ring');
    await this.createRingJob(r, rings[n]);
  }

  private async createRingJob(r: RolloutRow, ring: Ring) {
    const req = { packages: JSON.parse(r.packages), targets: ring.devices, params: JSON.parse(r.params) };
    await this.jobs.create(req, r.created_by, ring.jobId!, r.id).catch(async (e) => {
      // Created meanwhile by another tick or master: the job's id is the table's key.
      if (!(await ringJob(this.db, ring.jobId!))) throw e;
    });
  }

  /** The ring's job, created now if its ring was started and the job not yet made. */
  private async ringJobOf(r: RolloutRow, rings: Ring[], ring: Ring) {
    const job = await ringJob(this.db, ring.jobId!, heldRollout(r.id, rings));
    if (job) return job;
    await this.createRingJob(r, ring);
    return jobView(this.db, ring.jobId!, true, heldRollout(r.id, rings));
  }

  /** Moves every running rollout on: a ring that ended is judged; after the wait, the next one starts. */
  async tick(now = Date.now()) {
    const running = await this.db.selectFrom('rollouts').selectAll().where('state', '=', 'running').execute();
    let failure: unknown;
    for (const r of running)
      await this.step(r, now).catch(async (e) => {
        // A ring whose job can no longer be made (its package or its targets gone) fails its rollout,
        // saying why; anything else is tried again next tick. Either way the other rollouts go on.
        if (refusedForGood(e))
          await this.save(r, { state: 'failed', reason: `ring ${r.current + 1}'s job was refused: ${e.message}` });
        else failure ??= e;
      });
    if (failure) throw failure;
  }

  private async step(r: RolloutRow, now: number) {
    const rings = JSON.parse(r.rings) as Ring[];
    const ring = rings[r.current];
    const job = await this.ringJobOf(r, rings, ring);
    if (job.state === 'running') return;
    if (!ring.endedAt) {
      ring.endedAt = new Date(now).toISOString();
      ring.failureRate = (100 * (job.counts.failed ?? 0)) / Math.max(1, job.total);
      if (ring.failureRate > r.halt_rate) {
        const reason = `ring ${r.current + 1} of ${rings.length}: ${ring.failureRate.toFixed(1)}% of ${job.total} target(s) failed, past the limit of ${r.halt_rate}%`;
        if (await this.save(r, { rings, state: 'halted', reason })) await this.halted(r.id, ring.jobId!, reason);
        return;
      }
      if (!(await this.save(r, { rings }))) return;
    }
    if (r.current === rings.length - 1) {
      await this.save(r, { state: job.state === 'complete' ? 'complete' : 'failed' });
      return;
    }
    if (now >= Date.parse(ring.endedAt) + r.ring_wait_ms) await this.startRing(r, rings, r.current + 1);
  }

  private halted(id: string, jobId: string, reason: string) {
    return raiseHalted(this.db, this.raise, id, jobId, reason);
  }

  /**
   * Ticks every second; of masters sharing a database, the one holding the claim does the work, and a
   * tick still running when the next is due is not joined by it.
   */
  start(claim: (name: string, ms: number) => Promise<boolean>, log: { error: (o: object, m: string) => void }) {
    this.ticker = every(
      1000,
      async () => {
        if (await claim('rollouts tick', 2000)) await this.tick();
      },
      (err) => log.error({ err }, 'rollout tick failed'),
    );
  }

  async stop() {
    await this.ticker?.stop();
  }

  async resume(id: string) {
    const r = await this.find(id);
    if (!r) throw new FanoutError('FANOUT_ERR_JOB_UNKNOWN', { jobId: id, where: ' as a rollout' });
    if (r.state !== 'halted')
      throw new FanoutError('FANOUT_ERR_INPUT_INVALID', { detail: `rollout ${id} is ${r.state}, not halted` });
    const rings = JSON.parse(r.rings) as Ring[];
    if (r.current === rings.length - 1) await this.save(r, { state: 'failed', reason: r.reason });
    else await this.startRing(r, rings, r.current + 1); // the operator accepted the ring as it ended
    return rolloutView(this.db, id);
  }

  async abort(id: string, by: string) {
    // Again if a tick moved the rollout on meanwhile: the ring it started is the one to cancel.
    for (;;) {
      const r = await this.find(id);
      if (!r) throw new FanoutError('FANOUT_ERR_JOB_UNKNOWN', { jobId: id, where: ' as a rollout' });
      if (!['running', 'halted'].includes(r.state))
        throw new FanoutError('FANOUT_ERR_INPUT_INVALID', { detail: `rollout ${id} is ${r.state}: nothing to abort` });
      const rings = JSON.parse(r.rings) as Ring[];
      const current = rings[r.current].jobId;
      if (current && (await ringJob(this.db, current, heldRollout(r.id, rings)))?.state === 'running')
        await this.cancel(current, by);
      // Who stopped it, and why it had halted, if it had.
      const reason = `aborted by ${by}${r.reason ? ` (it had halted: ${r.reason})` : ''}`;
      if (await this.save(r, { state: 'aborted', reason })) return rolloutView(this.db, id);
    }
  }
}
