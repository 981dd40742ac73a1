// `fanout device verify` (DESIGN §17): the master asks the endpoints' relays, the endpoints hash their
// installed versions and answer through their relays; answers are kept, the last per device first.
import { newId } from '../protocol/crypto.ts';
import type { VerificationReport } from '../protocol/types.ts';
import { type Db, foldVerifications } from '../store/index.ts';
import { selectTargets } from './job-request.ts';
import type { RelayRegistry } from './relays.ts';

export class DeviceVerification {
  constructor(
    private readonly db: Db,
    private readonly relays: RelayRegistry,
  ) {}

  /** Asks each relay for its endpoints; the devices of a relay that cannot be asked are unreachable. */
  async request(req: { devices?: string[]; labels?: Record<string, string> }) {
    const devices = await selectTargets(this.db, { targets: req.devices, labels: req.labels });
    const requestId = newId('v');
    const byRelay = new Map<string, string[]>();
    for (const d of devices) byRelay.set(d.relay ?? '', [...(byRelay.get(d.relay ?? '') ?? []), d.id]);
    const unreachable: { id: string; why: string }[] = [];
    await Promise.all(
      [...byRelay].map(async ([relayId, ids]) => {
        try {
          const client = await this.relays.adminClient(relayId);
          await client.post('admin/v1/verify', { requestId, devices: ids }, { timeoutMs: 10_000 });
        } catch (e) {
          for (const id of ids) unreachable.push({ id, why: `relay ${relayId}: ${(e as Error).message}` });
        }
      }),
    );
    return { requestId, devices: devices.map((d) => d.id), unreachable };
  }

  /** What endpoints of this relay answered (a relay speaks only for its own endpoints). */
  async save(relayId: string, reports: VerificationReport[]) {
    if (!reports.length) return;
    const mine = new Set(
      (
        await this.db
          .selectFrom('devices')
          .select('id')
          .where(
            'id',
            'in',
            reports.map((r) => r.deviceId),
          )
          .where('relay', '=', relayId)
          .execute()
      ).map((d) => d.id),
    );
    const rows = reports
      .filter((r) => mine.has(r.deviceId))
      .map((r) => ({
        request_id: r.requestId ?? null,
        device_id: r.deviceId,
        package: r.package,
        version: r.version,
        state: r.state,
        tree: r.tree ?? null,
        detail: r.detail ?? null,
        at: r.at,
      }));
    if (rows.length)
      await this.db.transaction().execute(async (tx) => {
        await tx.insertInto('verifications').values(rows).execute();
        await foldVerifications(tx, rows);
      });
  }

  async answers(requestId: string) {
    const rows = await this.db
      .selectFrom('verifications')
      .selectAll()
      .where('request_id', '=', requestId)
      .orderBy('id')
      .execute();
    return rows.map((r) => ({
      id: r.device_id,
      package: r.package,
      version: r.version,
      state: r.state,
      tree: r.tree,
      detail: r.detail,
      at: r.at,
    }));
  }
}
