// What an endpoint keeps about itself (installed.json, journal.jsonl), and how an install fails.
import { existsSync } from 'node:fs';
import { appendFile, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { verifyPackage } from '../protocol/crypto.ts';
import type { FailureType } from '../protocol/failure-types.ts';
import type { PackageRef } from '../protocol/types.ts';

export class InstallError extends Error {
  override name = 'InstallError';
  constructor(
    readonly failureType: FailureType,
    message: string,
  ) {
    super(message);
  }
}

export interface InstalledEntry {
  name: string;
  version: string;
  digest: string;
  installedAt: string;
  jobId: string;
}

export class AgentState {
  constructor(private readonly dataDir: string) {}
  private get file() {
    return join(this.dataDir, 'installed.json');
  }
  async installed(): Promise<Record<string, InstalledEntry>> {
    if (!existsSync(this.file)) return {};
    return JSON.parse(await readFile(this.file, 'utf8'));
  }
  async markInstalled(e: InstalledEntry) {
    const all = await this.installed();
    all[`${e.name}@${e.version}`] = e;
    const tmp = this.file + '.tmp';
    await writeFile(tmp, JSON.stringify(all, null, 2));
    await rename(tmp, this.file);
  }
  async journal(entry: Record<string, unknown>) {
    await appendFile(
      join(this.dataDir, 'journal.jsonl'),
      JSON.stringify({ at: new Date().toISOString(), ...entry }) + '\n',
    );
  }
}

export function verifyDownloaded(pkg: PackageRef, digest: string, publicKey: string) {
  if (digest !== pkg.digest)
    throw new InstallError(
      'DIGEST_MISMATCH',
      `${pkg.name}@${pkg.version}: digest mismatch: expected ${pkg.digest}, got ${digest}; refused`,
    );
  if (!verifyPackage(publicKey, pkg, pkg.signature))
    throw new InstallError(
      'SIGNATURE_INVALID',
      `${pkg.name}@${pkg.version}: signature does not verify with the master's key; refused`,
    );
}
