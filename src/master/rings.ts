// A rollout's rings (DESIGN §13): who is in which ring, and what each ring came to.

export interface Ring {
  percent: number;
  devices: string[];
  jobId: string | null;
  endedAt: string | null;
  failureRate: number | null;
}

/** Deals targets (sorted by id) into rings by cumulative percentage; every ring gets at least one. */
export function dealRings(ids: string[], percents: number[]): string[][] {
  const sorted = [...ids].sort();
  const rings: string[][] = [];
  let from = 0;
  percents.forEach((p, i) => {
    const upTo =
      i === percents.length - 1
        ? sorted.length
        : Math.min(sorted.length, Math.max(from + 1, Math.ceil((p / 100) * sorted.length)));
    if (upTo > from) rings.push(sorted.slice(from, upTo));
    from = upTo;
  });
  return rings;
}
