// Enrollment at the master: its key (pinned at the first enrollment, changed only by a rotation the
// pinned key signed), and the token hashes of the devices this relay serves.
import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyRequest } from 'fastify';
import { bearer, type Principal } from '../common/auth.ts';
import type { Faults } from '../common/faults.ts';
import { checkedWithReread, PinnedKey } from '../common/pinned-key.ts';
import type { Client } from '../protocol/client.ts';
import { sha256Hex } from '../protocol/crypto.ts';
import { FanoutError } from '../protocol/errors.ts';
import type { Rotation } from '../protocol/keys.ts';
import { type ArchiveLimits, DEFAULT_LIMITS } from '../protocol/limits.ts';
import { verifyCanonical } from '../protocol/signing.ts';
import type { SignedHeader } from '../protocol/types.ts';
import type { MaintenanceWindow } from '../protocol/windows.ts';

export interface EnrolledDevice {
  id: string;
  kind: string;
  tokenHash: string | null;
  /** Here as a fallback: the device's own relay. */
  fallbackFor?: string | null;
  /** The relays this device turns to when its own is unreachable. */
  fallbackRelays?: { id: string; url: string }[];
  /** When this endpoint may install (maintenance windows). */
  windows?: MaintenanceWindow[];
}

interface EnrollResponse {
  publicKey: string;
  rotations?: Rotation[];
  devices: EnrolledDevice[];
  limits?: ArchiveLimits;
  depot?: { maxBytes?: number };
  rateLimitKBps?: number | null;
  /** The inventory's generation these devices come from (masters from before it do not send it). */
  inventory?: number;
  /** The generation of relays' addresses, read before the fallbacks' (masters from before it do not send it). */
  addresses?: number;
}

export class MasterEnrollment {
  private devices = new Map<string, EnrolledDevice>();
  private byId = new Map<string, EnrolledDevice>();
  private lastRefresh = 0;
  private keyRead?: Promise<void>;
  private keyReadAt = 0;
  readonly key: PinnedKey;
  /** The archive rules' limits the master sets. */
  limits: ArchiveLimits = DEFAULT_LIMITS;
  /** The depot cap the master sets for its relays. */
  depotMaxBytes?: number;
  /** This relay's cap on fetching and serving, from the inventory (KB/s). */
  rateLimitKBps?: number;
  /** The inventory's generation the devices held come from: the master answers at once when it moved on. */
  inventory?: number;
  /** The generation of relays' addresses the fallbacks held come from. */
  addresses?: number;

  constructor(
    private readonly relayId: string,
    dataDir: string,
    private readonly master: Client,
    masterKey?: string,
    /** Told the id of each device whose maintenance windows changed at a refresh. */
    private readonly onWindowsChanged: (deviceId: string) => void = () => {},
    private readonly faults?: Faults,
  ) {
    this.key = new PinnedKey(dataDir, masterKey);
  }

  /** Asks the master again, at most once a second. */
  async refresh() {
    if (Date.now() - this.lastRefresh < 1000) return;
    this.lastRefresh = Date.now();
    this.faults?.throwIf('relay.master.enroll');
    const r = await this.master.get<EnrollResponse>('api/v1/relay/enroll');
    await this.key.accept(r.publicKey, r.rotations);
    if (r.limits) this.limits = r.limits;
    this.depotMaxBytes = r.depot?.maxBytes;
    this.rateLimitKBps = r.rateLimitKBps ?? undefined;
    this.inventory = typeof r.inventory === 'number' ? r.inventory : undefined;
    this.addresses = typeof r.addresses === 'number' ? r.addresses : undefined;
    const before = this.byId;
    this.devices = new Map(r.devices.filter((x) => x.tokenHash).map((x) => [x.tokenHash!, x]));
    this.byId = new Map(r.devices.map((x) => [x.id, x]));
    // An endpoint waiting for its window hears of a changed one now, not at its next poll.
    const shown = (d?: EnrolledDevice) => JSON.stringify(d?.windows ?? []);
    if (before.size)
      for (const d of r.devices) {
        const was = before.get(d.id);
        if ((d.windows?.length || was?.windows?.length) && shown(d) !== shown(was)) this.onWindowsChanged(d.id);
      }
  }

  device(id: string) {
    return this.byId.get(id);
  }

  /** Lets the next refresh go to the master at once. */
  stale() {
    this.lastRefresh = 0;
  }

  /**
   * For a master's signature that does not verify (`fanout key rotate` since the last refresh):
   * reads the enrollment again, one read at a time and at most one a second, however many ask.
   */
  rereadKey() {
    this.keyRead ??= (async () => {
      await sleep(Math.max(0, this.keyReadAt + 1000 - Date.now()));
      this.keyReadAt = Date.now();
      this.stale();
      await this.refresh();
    })().finally(() => {
      this.keyRead = undefined;
    });
    return this.keyRead;
  }

  /** Whether the master signed this, with the key it may have rotated to since the last refresh. */
  verifies(signed: SignedHeader) {
    return checkedWithReread(
      () => this.key.keys,
      (keys) => verifyCanonical(keys, signed.header, signed.signature),
      (ok) => !ok,
      () => this.rereadKey().catch(() => undefined),
    );
  }

  /** Whether the master signed this with the latest key this relay knows of. */
  signedByLatest(signed: SignedHeader) {
    return !!this.key.current && verifyCanonical([this.key.current], signed.header, signed.signature);
  }

  /** An endpoint or child relay of this relay, by its device token. */
  authenticate = async (req: FastifyRequest): Promise<Principal> => {
    const hash = sha256Hex(bearer(req));
    let dev = this.devices.get(hash);
    if (!dev) {
      await this.refresh().catch(() => undefined);
      dev = this.devices.get(hash);
    }
    if (!dev)
      throw new FanoutError('FANOUT_ERR_AUTH_INVALID', {
        server: `relay ${this.relayId}`,
        hint: 'use the device token the master issued for this device',
      });
    return dev.kind === 'relay' ? { kind: 'relay', id: dev.id } : { kind: 'endpoint', id: dev.id };
  };
}
