// What a relay is told of its devices at enrollment (DESIGN §13): its endpoints and child relays, and
// the endpoints that name it as a fallback, with their token hashes and maintenance windows. Read
// from one scan of the devices per inventory generation (store/generations.ts), held, and shared out
// by relay: a thousand relays asking every minute, or all at once after an import, each read only
// their own instead of a scan each (31 ms a relay at 100,000 devices).
import { type Db, generationOf, generationsOf } from '../store/index.ts';
import type { Database } from '../store/schema.ts';
import { fallbacksOf } from './failover.ts';

/** A device as held: its fallback relays and maintenance windows found once, at the scan. */
type DeviceRow = Pick<Database['devices'], 'id' | 'kind' | 'token_hash' | 'relay'> & {
  fallbacks: string[];
  windows: { cron: string; durationMs: number; tz: string }[];
};
type WindowRow = Pick<Database['maintenance_windows'], 'location' | 'label' | 'cron' | 'duration_ms' | 'tz'>;
interface Held {
  byRelay: Map<string, DeviceRow[]>;
}

const MAX_AGE_MS = 60_000;

export class Enrollments {
  private held?: { generation: number; at: number; scan: Promise<Held> };

  constructor(private readonly db: Db) {}

  /**
   * The relay's devices, and the generations of the inventory and of relays' addresses they come
   * from: read first, so a change meanwhile makes the relay ask again.
   */
  async of(relayId: string) {
    const { inventory: generation, 'relay-addresses': addresses } = await generationsOf(this.db, [
      'inventory',
      'relay-addresses',
    ]);
    const held = await this.at(generation);
    const own = held.byRelay.get(relayId) ?? [];
    const fallbacks = [...new Set(own.flatMap((d) => d.fallbacks))];
    const urls = new Map(
      fallbacks.length
        ? (await this.db.selectFrom('relays').select(['id', 'url']).where('id', 'in', fallbacks).execute()).map(
            (r) => [r.id, r.url] as [string, string | null],
          )
        : [],
    );
    const devices = own.map((d) => ({
      id: d.id,
      kind: d.kind,
      tokenHash: d.token_hash,
      // Here as a fallback: its own relay is another.
      fallbackFor: d.relay !== relayId && d.fallbacks.includes(relayId) ? d.relay : undefined,
      // Maintenance windows (DESIGN §13): when this endpoint may install.
      windows: d.windows,
      fallbackRelays: d.fallbacks.flatMap((id) => {
        const url = urls.get(id);
        return url ? [{ id, url }] : [];
      }),
    }));
    return { inventory: generation, addresses, devices };
  }

  /** The ids of the devices a relay serves: the same devices its enrollment names. */
  async served(relayId: string) {
    const held = await this.at(await generationOf(this.db, 'inventory'));
    return new Set((held.byRelay.get(relayId) ?? []).map((d) => d.id));
  }

  /**
   * One scan for each generation, shared by the relays asking meanwhile; one that failed is not kept.
   * At most a minute old: a master from before the generation (in a rolling upgrade of masters on
   * one database) changes devices without bumping it.
   */
  private at(generation: number): Promise<Held> {
    const h = this.held;
    if (h && h.generation >= generation && Date.now() - h.at < MAX_AGE_MS) return h.scan;
    const scan = this.scan();
    const held = { generation, at: Date.now(), scan };
    this.held = held;
    scan.catch(() => {
      if (this.held === held) this.held = undefined;
    });
    return scan;
  }

  private async scan(): Promise<Held> {
    const [rows, windows] = await Promise.all([
      this.db
        .selectFrom('devices')
        .select(['id', 'kind', 'token_hash', 'relay', 'upstream', 'fallback_relays', 'location', 'labels'])
        .execute(),
      this.db.selectFrom('maintenance_windows').select(['location', 'label', 'cron', 'duration_ms', 'tz']).execute(),
    ]);
    const byRelay = new Map<string, DeviceRow[]>();
    const add = (relayId: string | null, d: DeviceRow) => {
      if (!relayId || relayId === 'master') return;
      const list = byRelay.get(relayId) ?? [];
      if (list.at(-1) !== d) list.push(d);
      byRelay.set(relayId, list);
    };
    for (const { upstream, fallback_relays, location, labels, ...row } of rows) {
      const d = {
        ...row,
        fallbacks: fallbacksOf(fallback_relays),
        windows: row.kind === 'endpoint' ? windowsOf(windows, { location, labels }) : NONE,
      };
      add(d.relay, d);
      add(upstream, d);
      for (const f of d.fallbacks) add(f, d);
    }
    return { byRelay };
  }
}

/** Shared by every device without windows (read, never changed). */
const NONE: DeviceRow['windows'] = [];

function windowsOf(windows: WindowRow[], d: { location: string; labels: string }) {
  if (!windows.length) return NONE;
  const labels = JSON.parse(d.labels) as Record<string, string>;
  return windows
    .filter((w) => w.location === d.location || (w.label && labels[w.label.split('=')[0]] === w.label.split('=')[1]))
    .map((w) => ({ cron: w.cron, durationMs: Number(w.duration_ms), tz: w.tz }));
}
