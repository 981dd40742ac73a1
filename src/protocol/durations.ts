// Durations ("30s", "15m", "24h", "7d") and deadlines (a duration from issue time, or an ISO-8601 time).

const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const DURATION = /^(\d+)(ms|s|m|h|d)$/;
/** The longest duration anything takes: far beyond any deadline or window, far below Date's range. */
export const MAX_DURATION_MS = 366 * UNIT_MS.d;

export function parseDuration(s: string): number {
  const m = DURATION.exec(s.trim());
  if (!m) throw new Error(`"${s}" is not a duration like 30s, 15m, 24h or 7d`);
  const ms = Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS];
  if (!(ms > 0 && ms <= MAX_DURATION_MS)) throw new Error(`"${s}" must be more than 0 and at most 366d`);
  return ms;
}

export const isDuration = (s: string) => DURATION.test(s.trim());

/** Checks a deadline parameter; returns why it is refused, or undefined. */
export function deadlineProblem(deadline: string): string | undefined {
  if (isDuration(deadline)) {
    try {
      parseDuration(deadline);
      return undefined;
    } catch (e) {
      return (e as Error).message;
    }
  }
  const t = Date.parse(deadline);
  if (Number.isNaN(t)) return `deadline "${deadline}" is neither an ISO-8601 time nor a duration like 30m`;
  if (t > Date.now() + MAX_DURATION_MS) return `deadline "${deadline}" is more than 366 days away`;
  return undefined;
}

/** When a command's deadline falls (ms since the epoch): a duration counts from the command's issue time. */
export function deadlineAt(deadline: string | undefined, issuedAt: string, fallbackMs: number): number {
  const issued = Date.parse(issuedAt);
  if (deadline) {
    if (isDuration(deadline)) return issued + parseDuration(deadline);
    const t = Date.parse(deadline);
    if (!Number.isNaN(t)) return t;
  }
  return issued + fallbackMs;
}
