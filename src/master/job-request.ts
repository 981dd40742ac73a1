// What a job request must be before anything is signed: known parameters within their bounds, and
// targets that are endpoints in the inventory (by id, or by labels that match).
import { deadlineProblem } from '../protocol/durations.ts';
import { FanoutError } from '../protocol/errors.ts';
import { JobParams } from '../protocol/types.ts';
import type { Db } from '../store/index.ts';

const KNOWN_PARAMS = Object.keys(JobParams.shape);

export function jobParams(raw: Record<string, unknown> | undefined): JobParams {
  // Only the parameters Fanout knows: a misspelt one would otherwise be signed and ignored.
  const unknown = Object.keys(raw ?? {}).filter((k) => !KNOWN_PARAMS.includes(k));
  if (unknown.length)
    throw new FanoutError('FANOUT_ERR_INPUT_INVALID', {
      detail: `unknown parameter(s) ${unknown.join(', ')}; known: ${KNOWN_PARAMS.join(', ')}`,
    });
  const params = JobParams.parse(raw ?? {});
  const deadlineWrong = params.deadline ? deadlineProblem(String(params.deadline)) : undefined;
  if (deadlineWrong) throw new FanoutError('FANOUT_ERR_INPUT_INVALID', { detail: deadlineWrong });
  return params;
}

export async function selectTargets(db: Db, req: { targets?: string[]; labels?: Record<string, string> }) {
  const devices = await db.selectFrom('devices').select(['id', 'kind', 'relay', 'labels']).execute();
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
  return targets;
}
