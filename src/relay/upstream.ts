// The relay's upstream (the master or a parent relay), behind one circuit breaker: after a few
// failures in a row it cools down instead of hammering a dead peer, and says "offline"/"online" once.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../common/log.ts';
import { type Client, HttpError } from '../protocol/client.ts';

export interface BreakerOptions {
  /** Failures in a row that open the breaker. */
  failures?: number;
  /** First cool-down; doubles while the upstream stays down, up to maxCoolDownMs. */
  coolDownMs?: number;
  maxCoolDownMs?: number;
  now?: () => number;
}

export class CircuitBreaker {
  private fails = 0;
  private openUntil = 0;
  private coolDown: number;
  private readonly opts: Required<BreakerOptions>;

  constructor(
    readonly name: string,
    private readonly log: Pick<Logger, 'warn' | 'info'>,
    opts: BreakerOptions = {},
  ) {
    this.opts = { failures: 3, coolDownMs: 500, maxCoolDownMs: 10_000, now: Date.now, ...opts };
    this.coolDown = this.opts.coolDownMs;
  }

  get offline() {
    return this.fails >= this.opts.failures;
  }

  /** How long to wait before the next try (0 while closed). */
  waitMs() {
    return Math.max(0, this.openUntil - this.opts.now());
  }

  success() {
    if (this.offline) this.log.info({ upstream: this.name }, 'upstream online');
    this.fails = 0;
    this.openUntil = 0;
    this.coolDown = this.opts.coolDownMs;
  }

  failure(err: unknown) {
    this.fails++;
    if (this.fails === this.opts.failures)
      this.log.warn({ upstream: this.name, err: (err as Error).message }, 'upstream offline; will keep trying');
    if (this.offline) {
      this.openUntil = this.opts.now() + this.coolDown;
      this.coolDown = Math.min(this.opts.maxCoolDownMs, this.coolDown * 2);
    }
  }
}

/** A client and its breaker: every call to the upstream goes through `call`. */
export class Upstream {
  readonly breaker: CircuitBreaker;
  constructor(
    readonly client: Client,
    log: Pick<Logger, 'warn' | 'info'>,
    opts?: BreakerOptions,
  ) {
    this.breaker = new CircuitBreaker(client.opts.baseUrl, log, opts);
  }

  async call<T>(fn: (c: Client) => Promise<T>, signal?: AbortSignal): Promise<T> {
    const wait = this.breaker.waitMs();
    if (wait) await sleep(wait, undefined, { signal });
    try {
      const out = await fn(this.client);
      this.breaker.success();
      return out;
    } catch (e) {
      // A refusal (4xx) is an answer: only silence and server errors count against the upstream.
      const answered = e instanceof HttpError && e.status >= 400 && e.status < 500;
      if (!signal?.aborted && !answered) this.breaker.failure(e);
      else if (answered) this.breaker.success();
      throw e;
    }
  }
}
