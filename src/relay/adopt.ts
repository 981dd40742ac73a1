// An endpoint that turned to this relay as its fallback (DESIGN §13): the master is told, at most
// every 10 s per device, and moves the device's open targets here.
import type { Logger } from '../common/log.ts';
import type { Client } from '../protocol/client.ts';

export function adopter(master: Client, log: Logger) {
  const told = new Map<string, number>();
  return (deviceId: string) => {
    if (Date.now() - (told.get(deviceId) ?? 0) < 10_000) return;
    told.set(deviceId, Date.now());
    master
      .post<{ jobs: string[] }>('api/v1/relay/adopt', { deviceId })
      .then((r) => r.jobs.length && log.info({ deviceId, jobs: r.jobs }, 'serving a device whose relay is away'))
      .catch((err) => {
        told.delete(deviceId);
        log.warn({ deviceId, err: (err as Error).message }, 'could not tell the master about a fallback device');
      });
  };
}
