// Maintenance windows (DESIGN §13): a cron expression (minute hour day-of-month month day-of-week) in a
// time zone, opening a window of `durationMs`. An endpoint downloads at once and installs only inside.

export interface MaintenanceWindow {
  cron: string;
  durationMs: number;
  /** IANA time zone, e.g. America/Chicago (default UTC). */
  tz?: string;
}

const RANGES: [number, number][] = [
  [0, 59],
  [0, 23],
  [1, 31],
  [1, 12],
  [0, 7],
];

/** The values a cron field allows: `*`, lists, ranges and steps (`*\/15`, `1-5`, `0,30`). */
function field(text: string, [lo, hi]: [number, number]): Set<number> {
  const out = new Set<number>();
  for (const part of text.split(',')) {
    const m = /^(\*|(\d+)(?:-(\d+))?)(?:\/(\d+))?$/.exec(part);
    if (!m) throw new Error(`"${part}" is not a cron field`);
    const from = m[1] === '*' ? lo : Number(m[2]);
    const to = m[1] === '*' ? hi : m[3] !== undefined ? Number(m[3]) : m[4] ? hi : from;
    const step = Number(m[4] ?? 1);
    if (from < lo || to > hi || from > to || step < 1) throw new Error(`"${part}" is out of range ${lo}-${hi}`);
    for (let v = from; v <= to; v += step) out.add(v);
  }
  return out;
}

export function parseCron(cron: string) {
  const parts = cron.trim().split(/\s+/);
  if (parts.length !== 5) throw new Error(`"${cron}" needs 5 fields: minute hour day-of-month month day-of-week`);
  const [min, hour, dom, mon, dow] = parts.map((p, i) => field(p, RANGES[i]));
  if (dow.has(7)) dow.add(0);
  return { min, hour, dom, mon, dow, anyDom: parts[2] === '*', anyDow: parts[4] === '*' };
}

function localFields(t: number, tz: string) {
  const f = new Intl.DateTimeFormat('en-US', {
    timeZone: tz,
    hourCycle: 'h23',
    minute: 'numeric',
    hour: 'numeric',
    day: 'numeric',
    month: 'numeric',
    weekday: 'short',
  }).formatToParts(new Date(t));
  const get = (type: string) => f.find((p) => p.type === type)?.value ?? '';
  const dow = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'].indexOf(get('weekday'));
  return {
    min: Number(get('minute')),
    hour: Number(get('hour')),
    dom: Number(get('day')),
    mon: Number(get('month')),
    dow,
  };
}

const matches = (c: ReturnType<typeof parseCron>, t: number, tz: string) => {
  const l = localFields(t, tz);
  const day = c.anyDom || c.anyDow ? c.dom.has(l.dom) && c.dow.has(l.dow) : c.dom.has(l.dom) || c.dow.has(l.dow);
  return c.min.has(l.min) && c.hour.has(l.hour) && c.mon.has(l.mon) && day;
};

const MINUTE = 60_000;

/** Whether one of the windows is open at `now`. */
export function windowOpen(windows: readonly MaintenanceWindow[], now = Date.now()): boolean {
  return windows.some((w) => {
    const c = parseCron(w.cron);
    const start = Math.floor(now / MINUTE) * MINUTE;
    for (let t = start; t > now - w.durationMs; t -= MINUTE) if (matches(c, t, w.tz ?? 'UTC')) return true;
    return false;
  });
}

/** When the next window opens (within 8 days), or undefined. */
export function nextOpening(windows: readonly MaintenanceWindow[], now = Date.now()): number | undefined {
  let best: number | undefined;
  for (const w of windows) {
    const c = parseCron(w.cron);
    for (let t = Math.ceil(now / MINUTE) * MINUTE; t < now + 8 * 1440 * MINUTE; t += MINUTE)
      if (matches(c, t, w.tz ?? 'UTC')) {
        best = best === undefined ? t : Math.min(best, t);
        break;
      }
  }
  return best;
}
