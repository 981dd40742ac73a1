// Times as Fanout stores them: ISO-8601 text, compared as text, so only years 1970–9999 are taken
// (a year of 10000 or -271821 sorts wrongly, or cannot be written at all).
const MIN = Date.UTC(1970, 0, 1);
const MAX = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

/** The time as stored (ISO-8601, UTC), or undefined when it is not a time within 1970–9999. */
export function storableTime(v: unknown): string | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  const t = typeof v === 'number' ? v : Date.parse(String(v));
  if (Number.isNaN(t) || t < MIN || t > MAX) return undefined;
  return new Date(t).toISOString();
}
