// Downloaded and verified, outside every maintenance window (DESIGN §13): the target is reported
// waiting_window, and the install waits until a window opens (checked again as the relay changes them).
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../common/log.ts';
import { type MaintenanceWindow, nextOpening, windowOpen } from '../protocol/windows.ts';

/** No windows, or one open now: the install goes ahead without waiting. */
export const windowOpenNow = (w: MaintenanceWindow[]) => !w.length || windowOpen(w);

export async function untilWindow(
  windows: () => MaintenanceWindow[],
  signal: AbortSignal,
  log: Logger,
  jobId: string,
  reportWaiting: () => Promise<void>,
  /** Resolves when the relay tells of other windows (or `until` aborts). */
  changed: (until: AbortSignal) => Promise<unknown>,
) {
  if (windowOpenNow(windows())) return;
  const opens = nextOpening(windows());
  await reportWaiting();
  log.info({ jobId, opens: opens && new Date(opens).toISOString() }, 'waiting for a maintenance window');
  while (!signal.aborted && windows().length && !windowOpen(windows())) {
    const next = nextOpening(windows()) ?? Date.now() + 30_000;
    const woken = new AbortController();
    const until = AbortSignal.any([signal, woken.signal]);
    await Promise.race([
      sleep(Math.min(30_000, Math.max(1000, next - Date.now())), undefined, { signal: until }),
      changed(until),
    ]).catch(() => undefined);
    woken.abort();
  }
}
