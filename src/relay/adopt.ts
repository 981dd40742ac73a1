// An endpoint that turned to this relay (DESIGN §13), as its fallback or coming back to its own: the
// master is told, at once when it arrives, else at most every 10 s per device, and moves the
// device's open targets here.
import type { Logger } from '../common/log.ts';
import type { Client } from '../protocol/client.ts';

export function adopter(master: Client, log: Logger) {
  const told = new Map<string, number>();
  return (deviceId: string, arrived = false) => {
    if (!arrived && Date.now() - (told.get(deviceId) ?? 0) < 10_000) return;
    told.set(deviceId, Date.now());
    master
      .post<{ jobs: string[] }>('api/v1/relay/adopt', { deviceId })
      .then((r) => r.jobs.length && log.info({ deviceId, jobs: r.jobs }, 'took over the open targets of a device'))
      .catch((err) => {
        told.delete(deviceId);
        log.warn({ deviceId, err: (err as Error).message }, 'could not tell the master about a fallback device');
      });
  };
}
