// How soon the relay's process collects garbage. V8 lets a heap grow to up to four times what was live
// at the last full collection. A relay holding 10,000 endpoints' long-polls has about 150 MB live, and
// a job's burst of requests (answers, reports, downloads) took it to 400-600 MB, nearly all garbage
// (issue 14). Collected once the heap has grown by a tenth instead: 271-285 MB at the peak, for about
// a quarter more of the relay's CPU during such a job. An operator's own setting wins
// (`node --heap-growing-percent=N $(command -v fanout) relay …`; NODE_OPTIONS does not take it).
import { setFlagsFromString } from 'node:v8';

export const HEAP_GROWING_PERCENT = 10;

export function collectGarbageSooner(given: readonly string[] = process.execArgv) {
  if (given.some((a) => a.startsWith('--heap-growing-percent') || a.startsWith('--heap_growing_percent'))) return false;
  setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
  return true;
}
