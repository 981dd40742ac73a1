// Enrollment at the master: its public key, and the token hashes of the devices this relay serves.
import { existsSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyRequest } from 'fastify';
import { bearer, type Principal } from '../common/auth.ts';
import type { Client } from '../protocol/client.ts';
import { sha256Hex } from '../protocol/crypto.ts';
import { FanoutError } from '../protocol/errors.ts';

interface EnrollResponse {
  publicKey: string;
  devices: { id: string; kind: string; tokenHash: string | null }[];
}

export class MasterEnrollment {
  private devices = new Map<string, { id: string; kind: string }>();
  private lastRefresh = 0;
  publicKey: string;

  constructor(
    private readonly relayId: string,
    private readonly dataDir: string,
    private readonly master: Client,
  ) {
    const keyFile = join(dataDir, 'master.pub');
    this.publicKey = existsSync(keyFile) ? readFileSync(keyFile, 'utf8') : '';
  }

  /** Asks the master again, at most once a second. */
  async refresh() {
    if (Date.now() - this.lastRefresh < 1000) return;
    this.lastRefresh = Date.now();
    const r = await this.master.get<EnrollResponse>('api/v1/relay/enroll');
    this.devices = new Map(r.devices.filter((x) => x.tokenHash).map((x) => [x.tokenHash!, { id: x.id, kind: x.kind }]));
    if (r.publicKey !== this.publicKey) {
      this.publicKey = r.publicKey;
      await writeFile(join(this.dataDir, 'master.pub'), this.publicKey);
    }
  }

  /** Lets the next refresh go to the master at once. */
  stale() {
    this.lastRefresh = 0;
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
