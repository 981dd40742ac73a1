// Step 1, parse: three intake formats into one shape. A line that does not parse is kept, not dropped.
import { sha256Hex } from '../protocol/crypto.ts';
import { storableTime } from '../protocol/times.ts';
import { alertOf, type IncomingAlert } from './incoming.ts';

/** A time within 1970–9999, or undefined (the alert then says it is not a timestamp). */
const isoOrNow = storableTime;

/** `2026-11-24T19:00:00Z relay-dal DISK_FULL job=j-42 location="Store 42" msg="ENOSPC writing depot"` */
export function parseTextLine(line: string, source: string): IncomingAlert {
  const base = {
    source,
    alertId: `line-${sha256Hex(line).slice(0, 32)}`,
    format: 'text' as const,
    raw: clip(line, MAX_RAW),
    at: new Date().toISOString(),
  };
  const bad = (why: string) => alertOf(base, { parseError: why });
  const m = /^(\S+)\s+(\S+)\s+(\S+)(.*)$/.exec(line.trim());
  if (!m) return bad('expected "TIMESTAMP DEVICE TYPE key=value… msg=…"');
  const [, ts, device, type, rest] = m;
  const at = isoOrNow(ts);
  if (!at) return bad(`"${ts}" is not a timestamp (ISO-8601, e.g. 2026-11-24T19:00:00Z)`);
  if (type !== '-' && !/^[A-Z][A-Z0-9_]*$/.test(type))
    return bad(`"${type}" is not a failure type (UPPER_SNAKE_CASE) or "-"`);
  const fields: Record<string, string> = {};
  let s = rest;
  while ((s = s.trimStart())) {
    const kv = /^([A-Za-z_][\w.-]*)=/.exec(s);
    if (!kv) return bad(`expected key=value at "${s.slice(0, 30)}"`);
    const key = kv[1];
    s = s.slice(kv[0].length);
    if (s.startsWith('"')) {
      const q = /^"((?:[^"\\]|\\.)*)"/.exec(s);
      if (!q) return bad(`unterminated quote in ${key}=`);
      fields[key] = q[1].replace(/\\(.)/g, '$1');
      s = s.slice(q[0].length);
    } else if (key === 'msg') {
      // msg is last: unquoted, it takes the rest of the line.
      fields[key] = s.trim();
      s = '';
    } else {
      const v = /^\S*/.exec(s)![0];
      fields[key] = v;
      s = s.slice(v.length);
    }
  }
  return alertOf(base, {
    alertId: fields.id ? `id-${fields.id}` : base.alertId,
    at,
    deviceId: device,
    failureType: type === '-' ? undefined : type,
    location: fields.location,
    jobId: fields.job,
    relayId: fields.relay,
    message: fields.msg === undefined ? undefined : clip(fields.msg, MAX_MESSAGE),
  });
}

/** What an alert keeps of its raw form and message: enough to read, never megabytes. */
const MAX_RAW = 16 * 1024;
const MAX_MESSAGE = 4000;
const clip = (s: string, n: number) => (s.length > n ? `${s.slice(0, n)}… (${s.length - n} more characters cut)` : s);
const str = (v: unknown) => (typeof v === 'string' && v.trim() ? clip(v.trim(), MAX_MESSAGE) : undefined);

/** JSON alert: `{deviceId|device|hostname, failureType?, location?, jobId|job?, relayId|relay?, message|msg?, at?, alertId?, source?}` */
export function parseJsonAlert(o: unknown, source: string): IncomingAlert {
  let raw: string;
  try {
    raw = JSON.stringify(o);
  } catch {
    return alertOf(
      {
        source,
        alertId: `json-${Date.now()}-${Math.random()}`,
        format: 'json',
        raw: '(not storable)',
        at: new Date().toISOString(),
      },
      { parseError: 'the alert is nested too deeply to store' },
    );
  }
  raw = clip(raw, MAX_RAW);
  // The id from the raw form only when the alert names none: hashing every alert cost ~2 % of intake.
  const rawId = () => `json-${sha256Hex(raw).slice(0, 32)}`;
  const base = { source, alertId: '', format: 'json' as const, raw, at: new Date().toISOString() };
  const bad = (parseError: string) => alertOf(base, { alertId: rawId(), parseError });
  if (!o || typeof o !== 'object' || Array.isArray(o)) return bad('an alert must be a JSON object');
  const a = o as Record<string, unknown>;
  const deviceId = str(a.deviceId) ?? str(a.device) ?? str(a.hostname);
  if (!deviceId) return bad('no device: set "deviceId" (or "device", "hostname")');
  const failureType = str(a.failureType) ?? str(a.type);
  if (failureType && failureType !== '-' && !/^[A-Z][A-Z0-9_]*$/.test(failureType))
    return bad(`"${failureType}" is not a failure type (UPPER_SNAKE_CASE)`);
  const at = a.at ?? a.timestamp;
  if (at !== undefined && !isoOrNow(at)) return bad(`"${String(at)}" is not a timestamp`);
  return alertOf(base, {
    alertId: str(a.alertId) ?? rawId(),
    at: isoOrNow(at) ?? base.at,
    deviceId,
    failureType: failureType === '-' ? undefined : failureType,
    location: str(a.location),
    jobId: str(a.jobId) ?? str(a.job),
    relayId: str(a.relayId) ?? str(a.relay),
    message: str(a.message) ?? str(a.msg),
  });
}

/** Alertmanager's webhook body: one alert per entry of `alerts`; resolved notices are kept but not counted. */
export function parseAlertmanager(body: unknown): IncomingAlert[] {
  const b = body as { alerts?: unknown };
  if (!b || typeof b !== 'object' || !Array.isArray(b.alerts))
    return [
      alertOf(
        {
          source: 'alertmanager',
          alertId: `am-${sha256Hex(JSON.stringify(body ?? null)).slice(0, 32)}`,
          format: 'alertmanager',
          raw: JSON.stringify(body ?? null),
          at: new Date().toISOString(),
        },
        { parseError: 'not an Alertmanager webhook: no "alerts" array' },
      ),
    ];
  return b.alerts.map((x) => {
    const a = (x ?? {}) as {
      status?: string;
      labels?: Record<string, string>;
      annotations?: Record<string, string>;
      startsAt?: string;
      fingerprint?: string;
    };
    const labels = a.labels ?? {};
    const raw = JSON.stringify(x);
    const alertId = `am-${a.fingerprint ?? sha256Hex(JSON.stringify(labels)).slice(0, 16)}-${a.startsAt ?? ''}`;
    const base = {
      source: 'alertmanager',
      alertId,
      format: 'alertmanager' as const,
      raw,
      at: isoOrNow(a.startsAt) ?? new Date().toISOString(),
    };
    if (a.status === 'resolved')
      return alertOf(base, { alertId: `${alertId}-resolved`, notice: 'a resolved notice: the failure ended' });
    const deviceId = labels.device ?? labels.deviceId ?? labels.hostname ?? labels.instance?.replace(/:\d+$/, '');
    if (!deviceId) return alertOf(base, { parseError: 'no device label (device, hostname or instance)' });
    const type =
      labels.failure_type ??
      labels.failureType ??
      (/^[A-Z][A-Z0-9_]*$/.test(labels.alertname ?? '') ? labels.alertname : undefined);
    return alertOf(base, {
      deviceId,
      failureType: type,
      location: labels.location,
      jobId: labels.fanout_job ?? labels.job_id,
      relayId: labels.relay,
      message: a.annotations?.description ?? a.annotations?.summary ?? labels.alertname,
    });
  });
}
