// What the dashboard holds, and how it gets it: everything once, then only what each change event names.
import { api, type ChangeEvent } from './api.ts';

export interface Snapshot {
  jobs: any[];
  alerts: any[];
  failed: any[];
  tickets: any[];
  plans: any[];
  outages: any[];
  thresholds: any;
  outbox: any[];
  relays: any[];
  rollouts: any[];
}

/** Where each list comes from: jobs as summaries (their targets load a page at a time, on demand). */
const LISTS = {
  jobs: 'jobs?view=summary',
  alerts: 'alerts?limit=300',
  failed: 'failed',
  tickets: 'tickets',
  plans: 'plans?view=summary',
  outages: 'outages',
  thresholds: 'thresholds',
  outbox: 'outbox',
  relays: 'relays',
  rollouts: 'rollouts?view=summary',
} as const;

export async function load(token: string): Promise<Snapshot> {
  const names = Object.keys(LISTS) as (keyof typeof LISTS)[];
  const values = await Promise.all(names.map((n) => api(token, `/api/v1/${LISTS[n]}`)));
  return Object.fromEntries(names.map((n, i) => [n, values[i]])) as unknown as Snapshot;
}

/**
 * A change event: only the lists and jobs it names are asked for again. The answer is a patch, applied
 * to what the dashboard holds when the answers arrive (a full load may have replaced it meanwhile).
 */
export async function fetchChange(
  token: string,
  e: ChangeEvent,
  held?: Snapshot,
): Promise<(data: Snapshot) => Snapshot> {
  // Rings are jobs: a ring that changed may move its rollout on, and a job not seen yet may be a new ring.
  const rings = new Set(held?.rollouts.flatMap((r) => r.rings.map((g: any) => g.jobId)) ?? []);
  const known = new Set(held?.jobs.map((j) => j.jobId) ?? []);
  const ringMoved = !held || (e.jobs ?? []).some((id) => rings.has(id) || !known.has(id));
  const named = [...(e.lists ?? []), ...(ringMoved && e.jobs?.length ? ['rollouts'] : [])];
  const lists = [...new Set(named)].filter((l): l is keyof typeof LISTS => l in LISTS);
  const jobs = e.jobs ?? [];
  const [fresh, summaries] = await Promise.all([
    Promise.all(lists.map((l) => api(token, `/api/v1/${LISTS[l]}`))),
    jobs.length > 20
      ? api(token, `/api/v1/${LISTS.jobs}`)
      : Promise.all(jobs.map((id) => api(token, `/api/v1/jobs/${encodeURIComponent(id)}?view=summary`))),
  ]);
  return (data) => {
    const next = { ...data };
    lists.forEach((l, i) => {
      (next as Record<string, unknown>)[l] = fresh[i];
    });
    if (jobs.length > 20) next.jobs = summaries;
    else if (jobs.length) {
      const byId = new Map((summaries as any[]).map((j) => [j.jobId, j]));
      const known = new Set(next.jobs.map((j) => j.jobId));
      next.jobs = [
        ...(summaries as any[]).filter((j) => !known.has(j.jobId)),
        ...next.jobs.map((j) => byId.get(j.jobId) ?? j),
      ];
    }
    return next;
  };
}
