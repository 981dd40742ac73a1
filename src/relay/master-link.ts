// The relay's link to the master: enrollment, heartbeats, and the long-poll for commands.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../common/log.ts';
import { type Client, HttpError } from '../protocol/client.ts';
import { authorityOf } from '../protocol/command.ts';
import { KeyChangedError } from '../protocol/keys.ts';
import { verifyCanonical } from '../protocol/signing.ts';
import type { DistributionCommand } from '../protocol/types.ts';
import type { Distributor } from './distribution.ts';
import type { MasterEnrollment } from './enroll.ts';
import type { Upstream } from './upstream.ts';

export class RelayRefused extends Error {
  override name = 'RelayRefused';
}

/** The master's key and the tokens of the devices this relay serves; with a key kept, the master may be away. */
export async function enroll(enrollment: MasterEnrollment, log: Logger, signal: AbortSignal) {
  for (let attempt = 0; !signal.aborted; attempt++) {
    try {
      await enrollment.refresh();
      return;
    } catch (e) {
      if (e instanceof HttpError && (e.status === 401 || e.status === 403))
        throw new RelayRefused(`the master refused this relay's token: ${e.message}`);
      if (e instanceof KeyChangedError) throw new RelayRefused(`${e.message} [FANOUT_ERR_KEY_CHANGED]`);
      if (enrollment.key.keys.length && attempt >= 2) {
        log.warn('master unreachable; starting from the job log with the stored key');
        return;
      }
      log.warn({ err: (e as Error).message }, 'master unreachable; retrying enrollment');
      enrollment.stale();
      await sleep(Math.min(5000, 500 * 2 ** attempt), undefined, { signal }).catch(() => undefined);
    }
  }
}

/**
 * The master tells of inventory changes at once, and of relays' new addresses with each answer to
 * the long-poll (pollCommands); this catches a notice missed, every minute. A master from before
 * tells nothing (it sends no generation): it is asked every 10 s.
 */
export function refreshPeriodically(enrollment: MasterEnrollment) {
  let refreshed = Date.now();
  const timer = setInterval(() => {
    if (enrollment.inventory !== undefined && Date.now() - refreshed < 60_000) return;
    refreshed = Date.now();
    enrollment.stale();
    enrollment.refresh().catch(() => undefined);
  }, 10_000);
  timer.unref();
  return timer;
}

export async function heartbeat(master: Client, url: string, everyMs: number, log: Logger, signal: AbortSignal) {
  while (!signal.aborted) {
    try {
      // The master answers once it has written it (up to 200 ms): a relay stopping does not wait.
      await master.post('api/v1/relay/heartbeat', { url }, { signal });
    } catch (e) {
      if (!signal.aborted) log.warn({ err: (e as Error).message }, 'heartbeat not delivered');
    }
    await sleep(everyMs, undefined, { signal }).catch(() => undefined);
  }
}

const signedByKnownKey = (enrollment: MasterEnrollment, cmd: DistributionCommand) => {
  const signed = authorityOf(cmd);
  return !!signed && verifyCanonical(enrollment.key.keys, signed.header, signed.signature);
};

/** Long-polls the master for commands: each is on disk (fsync) before it is acknowledged. */
export async function pollCommands(
  master: Upstream,
  distributor: Distributor,
  enrollment: MasterEnrollment,
  log: Logger,
  signal: AbortSignal,
) {
  while (!signal.aborted) {
    try {
      const known = enrollment.inventory;
      const { commands, inventory, addresses } = await master.call(
        (c) =>
          c.get<{ commands: DistributionCommand[]; inventory?: number; addresses?: number }>(
            `api/v1/relay/commands?wait=20${known === undefined ? '' : `&inventory=${known}`}`,
            { timeoutMs: 30_000, signal },
          ),
        signal,
      );
      // The inventory changed (new devices and their tokens, maintenance windows), maybe with the job:
      // known before the job is offered, or its endpoints would install outside new windows.
      const moved = typeof inventory === 'number' && inventory !== known;
      // A relay's address changed: the fallbacks this relay hands its endpoints may name it.
      const readdressed =
        typeof addresses === 'number' && enrollment.addresses !== undefined && addresses !== enrollment.addresses;
      let keyRead = true;
      if (commands.length || moved || readdressed) {
        enrollment.stale();
        try {
          await enrollment.refresh();
          if (moved)
            log.info({ inventory: enrollment.inventory }, 'inventory changed at the master; devices read again');
          else if (readdressed)
            log.info(
              { addresses: enrollment.addresses },
              "a relay's address changed at the master; devices read again",
            );
        } catch {
          keyRead = false;
          // A master that cannot answer now is not asked again in a tight loop.
          await sleep(1000, undefined, { signal }).catch(() => undefined);
        }
      }
      // Each command is on disk (or refused, and reported) before it is acknowledged; one the disk
      // refuses stops the batch unacknowledged, so the master sends it again.
      const handled: string[] = [];
      try {
        for (const cmd of commands) {
          // Signed by a key the relay could not read just now (a rotation): left unacknowledged, it
          // comes again, rather than refused for good and its job failed.
          if (!keyRead && !signedByKnownKey(enrollment, cmd)) {
            log.warn(
              { commandId: cmd.commandId },
              "command signed by a key not known yet; the master's key could not be read",
            );
            continue;
          }
          distributor.accept(cmd);
          handled.push(cmd.commandId);
        }
      } finally {
        if (handled.length) await master.call((c) => c.post('api/v1/relay/acks', { commandIds: handled }));
      }
    } catch {
      if (signal.aborted) break;
      // The breaker spaces the next try; a short pause keeps a refusing master from a tight loop.
      await sleep(500, undefined, { signal }).catch(() => undefined);
    }
  }
}
