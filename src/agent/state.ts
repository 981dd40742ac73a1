// What an endpoint keeps about itself (installed.json, journal.jsonl), and how an install fails.
import { existsSync } from 'node:fs';
import { appendFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { replaceFile } from '../common/files.ts';
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

/**
 * An assignment stopped before it installed anything: cancelled or withdrawn at the relay, or the
 * agent stopping. Nothing more is reported; the relay knows, or offers it again.
 */
export class Cancelled extends Error {
  override name = 'Cancelled';
}

export interface InstalledEntry {
  name: string;
  version: string;
  digest: string;
  installedAt: string;
  jobId: string;
  /** The install root it went to, the tree hash attested after the install, and the files the
   * install added beside the signed ones (DESIGN §17): what a later verification compares with. */
  root?: string;
  tree?: string;
  extra?: string[];
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
    await this.save(all);
  }
  /** Forgets pruned versions (`name@version`). */
  async forget(keys: string[]) {
    const all = await this.installed();
    for (const k of keys) delete all[k];
    await this.save(all);
  }
  private async save(all: Record<string, InstalledEntry>) {
    await replaceFile(this.file, JSON.stringify(all, null, 2));
  }
  /** The version of a package installed last (what `current` points at). */
  currentVersion(all: Record<string, InstalledEntry>, name: string): string | undefined {
    const mine = Object.values(all).filter((e) => e.name === name);
    mine.sort((a, b) => a.installedAt.localeCompare(b.installedAt));
    return mine.at(-1)?.version;
  }

  async journal(entry: Record<string, unknown>) {
    await appendFile(
      join(this.dataDir, 'journal.jsonl'),
      JSON.stringify({ at: new Date().toISOString(), ...entry }) + '\n',
    );
  }
}

export function verifyDownloaded(pkg: PackageRef, digest: string, keys: readonly string[]) {
  if (digest !== pkg.digest)
    throw new InstallError(
      'DIGEST_MISMATCH',
      `${pkg.name}@${pkg.version}: digest mismatch: expected ${pkg.digest}, got ${digest}; refused`,
    );
  if (!verifyPackage(keys, pkg, pkg.signature))
    throw new InstallError(
      'SIGNATURE_INVALID',
      `${pkg.name}@${pkg.version}: signature does not verify with the master's key; refused`,
    );
}
