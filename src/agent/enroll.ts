// Enrollment at the relay: the master's key (only the pinned one, or a rotation it signed), the archive
// limits, and the fallback relays; a key kept from before lets the agent start while the relay is away.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../common/log.ts';
import type { PinnedKey } from '../common/pinned-key.ts';
import { HttpError } from '../protocol/client.ts';
import { KeyChangedError, type Rotation } from '../protocol/keys.ts';
import type { ArchiveLimits } from '../protocol/limits.ts';
import type { RelayLink } from './relay-link.ts';

export class AgentRefused extends Error {
  override name = 'AgentRefused';
}

export async function enrollAtRelay(x: {
  link: RelayLink;
  key: PinnedKey;
  log: Logger;
  id: string;
  signal: AbortSignal;
  onLimits: (l: ArchiveLimits) => void;
}) {
  for (let attempt = 0; !x.signal.aborted; attempt++) {
    try {
      const r = await x.link.client.get<{
        publicKey: string;
        rotations?: Rotation[];
        limits?: ArchiveLimits;
        fallbackRelays?: { id: string; url: string }[];
      }>('agent/v1/enroll');
      await x.key.accept(r.publicKey, r.rotations ?? []);
      if (r.limits) x.onLimits(r.limits);
      if (r.fallbackRelays?.length) x.link.learn(r.fallbackRelays);
      return;
    } catch (e) {
      if (e instanceof HttpError && (e.status === 401 || e.status === 403))
        throw new AgentRefused(`relay refused the token for ${x.id}: ${e.message}`);
      if (e instanceof KeyChangedError) throw new AgentRefused(`${e.message} [FANOUT_ERR_KEY_CHANGED]`);
      if (x.key.keys.length) return;
      x.log.warn({ err: (e as Error).message }, 'relay unreachable; retrying enrollment');
      await sleep(Math.min(5000, 300 * 2 ** attempt), undefined, { signal: x.signal }).catch(() => undefined);
    }
  }
}
