// The agent's side of the assignment long-poll. Assignments (and verifications) are worked one at a
// time, in the order taken, and the agent goes on listening meanwhile: it tells the relay what it
// holds (`holding`, `verifying`), and the relay answers only when there is something new. So a window
// change, a verification request, or an assignment withdrawn (cancelled, ended) reaches an agent
// whose assignment waits for its maintenance window.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../common/log.ts';
import type { Assignment } from '../protocol/types.ts';
import type { MaintenanceWindow } from '../protocol/windows.ts';
import type { RelayLink } from './relay-link.ts';
import { Turns } from './turns.ts';
import type { Worker } from './worker.ts';

/** The relay takes `holding` up to 8,000 characters (relay/routes.ts). */
const MAX_HOLDING = 7000;

type Answer = { assignments: Assignment[]; verify?: string; windows?: MaintenanceWindow[] };

export class Listener {
  /** Each assignment or verification starts when the one before has ended (turns.ts). */
  private readonly turns = new Turns();
  private readonly working = new Set<Promise<void>>();
  private readonly done = new Set<string>();
  /** Taken and not finished (working, waiting for a window, or waiting for its turn). */
  private readonly taken = new Map<string, AbortController>();
  private readonly answered = new Set<string>();
  private offered = new Set<string>();
  private verifying: string | undefined;
  /** Aborted when a piece of work ends: there may be something new to ask about. */
  private workEnded = new AbortController();

  constructor(
    private readonly d: {
      link: RelayLink;
      worker: Worker;
      log: Logger;
      stopping: AbortSignal;
      enroll: () => Promise<unknown>;
      verify: (requestId?: string) => Promise<void>;
      onWindows: (w: MaintenanceWindow[]) => void;
    },
  ) {}

  /** Verification runs in turn, never beside an install: it hashes the same folders. */
  verify(requestId?: string) {
    return this.inTurn(true, () =>
      this.d.verify(requestId).catch((err) => this.d.log.warn({ err: (err as Error).message }, 'verification failed')),
    );
  }

  /** Resolves once the work taken has ended (after a stop). */
  async settled() {
    await Promise.allSettled([...this.working]);
  }

  private inTurn(urgent: boolean, work: () => Promise<void>) {
    const p = this.turns
      .take(urgent)
      .then(work)
      .finally(() => this.turns.release());
    const kept = p.catch(() => undefined).finally(() => this.working.delete(kept));
    this.working.add(kept);
    return p;
  }

  async run() {
    const { link, log, stopping } = this.d;
    let failures = 0;
    let quick = 0;
    while (!stopping.aborted) {
      try {
        const asked = Date.now();
        const answer = await link.client.get<Answer>(`agent/v1/assignments?${this.query()}`, {
          timeoutMs: 30_000,
          signal: stopping,
        });
        failures = 0;
        link.ok();
        const fresh = this.take(answer);
        // Answered at once with nothing new (an older relay, which does not hold; or one still asking
        // for a verification this agent could not deliver): asked again later each time, up to a
        // long-poll's wait, or as soon as a piece of work ends.
        if (!fresh && Date.now() - asked < 1000) {
          const pause = Math.min(20_000, 1000 * 2 ** quick++);
          await sleep(pause, undefined, { signal: AbortSignal.any([stopping, this.workEnded.signal]) }).catch(
            () => undefined,
          );
        } else quick = 0;
      } catch (e) {
        if (stopping.aborted) break;
        if (failures++ === 0) log.warn({ err: (e as Error).message }, 'relay unreachable; will keep trying');
        if (link.failed()) {
          failures = 0;
          await this.d
            .enroll()
            .catch((err) => log.warn({ err: (err as Error).message }, 'fallback relay refused us for now'));
          continue;
        }
        await sleep(Math.min(5000, 200 * 2 ** Math.min(failures, 5)), undefined, { signal: stopping }).catch(
          () => undefined,
        );
      }
    }
  }

  /**
   * What the agent holds: what it has taken, and what it finished that the relay still listed (its
   * report refused, say). Past what a query takes, the rest is left out: the relay then answers at
   * once, and the agent asks again later (above).
   */
  private query() {
    let holding = '';
    for (const id of [...this.taken.keys(), ...[...this.offered].filter((id) => this.done.has(id))]) {
      if (holding.length + id.length + 1 > MAX_HOLDING) break;
      holding += holding ? `,${id}` : id;
    }
    return new URLSearchParams({
      wait: '20',
      ...(holding ? { holding } : {}),
      ...(this.verifying ? { verifying: this.verifying } : {}),
      ...(this.d.link.arrived ? { arrived: '1' } : {}),
    }).toString();
  }

  /** Takes an answer in: true when it held anything new. */
  private take({ assignments, verify, windows }: Answer): boolean {
    this.d.onWindows(windows ?? []);
    this.offered = new Set(assignments.map((a) => a.assignmentId));
    for (const [id, withdrawn] of this.taken) if (!this.offered.has(id)) withdrawn.abort();
    let fresh = false;
    if (verify && !this.answered.has(verify)) {
      fresh = true;
      this.answered.add(verify);
      this.verifying = verify;
      void this.verify(verify).finally(() => {
        if (this.verifying === verify) this.verifying = undefined;
      });
    }
    for (const a of assignments) {
      const id = a.assignmentId;
      if (this.done.has(id) || this.taken.has(id)) continue;
      fresh = true;
      const withdrawn = new AbortController();
      this.taken.set(id, withdrawn);
      // One that does not wait for windows may go while another waits for its window.
      void this.inTurn(a.params?.ignoreWindows === true, () =>
        this.d.worker
          .work(a, withdrawn.signal, (wait) => this.turns.lend(wait))
          .then(
            // A withdrawn one may be offered again: it is taken again then.
            (end) => void (end === 'done' && this.done.add(id)),
            (err) => void this.d.log.error({ err: (err as Error).message, jobId: a.jobId }, 'assignment crashed'),
          ),
      ).finally(() => {
        this.taken.delete(id);
        this.workEnded.abort();
        this.workEnded = new AbortController();
      });
    }
    return fresh;
  }
}
