// HTTP face of alert intake: JSON and text lines with any admin or device token, and Alertmanager's
// webhook. What a device's token may say is bound here (bind): about itself, with types we know.
import type { Principal } from '../common/auth.ts';
import type { App } from '../common/server.ts';
import { FanoutError } from '../protocol/errors.ts';
import { FAILURE_TYPES } from '../protocol/failure-types.ts';
import { MAX_ALERTS_PER_REQUEST } from '../protocol/limits.ts';
import type { IncomingAlert } from './incoming.ts';
import { parseAlertmanager, parseJsonAlert, parseTextLine } from './parse.ts';
import type { AlertDeps } from './routes.ts';

/** Intake: any admin or device token; the source is who sent it. */
export function alertIntakeRoutes(s: App, d: AlertDeps) {
  const known = new Set<string>([...FAILURE_TYPES, ...Object.keys(d.cfg.failureTypes)]);
  const sourceOf = (p: Principal) =>
    p.kind === 'admin' ? 'api' : p.kind === 'user' ? `user ${p.name}` : p.kind === 'anonymous' ? 'anonymous' : p.id;
  /**
   * A device speaks only for itself (a relay also for the devices it serves); its alerts were parsed
   * with the token's device as their source, never the body's. Anything else refuses the whole request.
   */
  const bind = async (p: Principal, alerts: IncomingAlert[]) => {
    if (p.kind === 'admin') return alerts;
    if (p.kind !== 'relay' && p.kind !== 'endpoint')
      throw new FanoutError('FANOUT_ERR_AUTH_FORBIDDEN', { needs: 'a token' });
    const mine = await d.db
      .selectFrom('devices')
      .select(['id', 'hostname'])
      .where((eb) =>
        p.kind === 'relay'
          ? eb.or([eb('id', '=', p.id), eb('relay', '=', p.id), eb('upstream', '=', p.id)])
          : eb('id', '=', p.id),
      )
      .execute();
    const names = new Set(mine.flatMap((x) => (x.hostname ? [x.id, x.hostname] : [x.id])));
    const foreign = [...new Set(alerts.flatMap((a) => (a.deviceId && !names.has(a.deviceId) ? [a.deviceId] : [])))];
    if (foreign.length)
      throw new FanoutError('FANOUT_ERR_AUTH_FORBIDDEN', {
        needs: `a token of ${foreign.join(', ')}: ${p.id} may send alerts about ${p.kind === 'relay' ? 'itself and its endpoints' : 'itself'} only`,
      });
    // Parsed for this request alone: set in place (a spread copy costs microseconds an alert).
    for (const a of alerts) {
      a.relayId = p.kind === 'relay' ? p.id : undefined;
      // A device declares only types this master knows: each new type would be a ticket and a mail
      // of its own, so a compromised endpoint could mail its maintenance center without end.
      if (a.failureType && !known.has(a.failureType)) {
        a.undeclared = a.failureType;
        a.failureType = undefined;
      }
    }
    return alerts;
  };
  const accept = async (alerts: IncomingAlert[], from: object) => {
    if (alerts.length > MAX_ALERTS_PER_REQUEST)
      throw new FanoutError('FANOUT_ERR_ALERT_INVALID', {
        detail: `${alerts.length} alerts in one request; send at most ${MAX_ALERTS_PER_REQUEST}`,
      });
    const stored = await d.center.ingest(alerts, from);
    return {
      accepted: stored.filter((x) => !x.duplicate).length,
      duplicates: stored.filter((x) => x.duplicate).length,
      ids: stored.map((x) => x.id),
      outcomes: stored.map((x) => x.outcome),
    };
  };
  s.post('/api/v1/alerts', { bodyLimit: 8 * 1024 * 1024 }, async (req) => {
    const source = sourceOf(req.principal);
    if (typeof req.body === 'string') {
      const lines = req.body.split(/\r?\n/).filter((l) => l.trim() && !l.trimStart().startsWith('#'));
      return accept(
        await bind(
          req.principal,
          lines.map((l) => parseTextLine(l, source)),
        ),
        req.raw.socket,
      );
    }
    const items = Array.isArray(req.body) ? req.body : [req.body];
    return accept(
      await bind(
        req.principal,
        items.map((o) => parseJsonAlert(o, source)),
      ),
      req.raw.socket,
    );
  });
}

/** Alertmanager's webhook: an integration holding the admin token. */
export function alertmanagerRoutes(s: App, d: AlertDeps) {
  s.post('/api/v1/alerts/alertmanager', { bodyLimit: 8 * 1024 * 1024 }, async (req) => {
    const stored = await d.center.ingest(parseAlertmanager(req.body));
    return {
      accepted: stored.filter((x) => !x.duplicate).length,
      ids: stored.map((x) => x.id),
      outcomes: stored.map((x) => x.outcome),
    };
  });
}
