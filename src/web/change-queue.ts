// Change events asked for one at a time. During an alert storm the master sends one every 100 ms;
// if each list took longer than that to fetch, a queue of them would grow and the dashboard fall
// further behind while the master answered questions already stale. Those arriving while one is
// being fetched are merged into the next.
import type { ChangeEvent } from './api.ts';

export function mergeChanges(a: ChangeEvent, b: ChangeEvent): ChangeEvent {
  if (a.all || b.all) return { all: true };
  return {
    all: false,
    jobs: [...new Set([...(a.jobs ?? []), ...(b.jobs ?? [])])],
    lists: [...new Set([...(a.lists ?? []), ...(b.lists ?? [])])],
  };
}

/** `push(e)`: runs `apply(e)` now, or merged with whatever else arrives, once the running one ends. */
export function changeQueue(apply: (e: ChangeEvent) => Promise<void>) {
  let pending: ChangeEvent | null = null;
  let running = false;
  const drain = async () => {
    running = true;
    while (pending) {
      const e = pending;
      pending = null;
      await apply(e).catch(() => undefined);
    }
    running = false;
  };
  return (e: ChangeEvent) => {
    pending = pending ? mergeChanges(pending, e) : e;
    if (!running) void drain();
  };
}
