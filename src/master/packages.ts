// The package store: blobs by SHA-256 under <data>/blobs, signed metadata in the database.
import { createHash } from 'node:crypto';
import { createWriteStream, existsSync } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ArchiveLimits } from '../protocol/archive.ts';
import { signPackage } from '../protocol/crypto.ts';
import { digestPath } from '../protocol/digest.ts';
import { FanoutError } from '../protocol/errors.ts';
import { inspectPackage } from '../protocol/package-file.ts';
import { FIRST_PAGE, type Page } from '../protocol/page.ts';
import type { PackageRef } from '../protocol/types.ts';
import type { Db } from '../store/index.ts';

export class PackageStore {
  constructor(
    private readonly db: Db,
    private readonly dataDir: string,
    /** The signing key in force (it changes with `fanout key rotate`). */
    private readonly privateKey: () => string,
    private readonly limits: ArchiveLimits,
  ) {}

  blobPath(digest: string) {
    const p = digestPath(join(this.dataDir, 'blobs'), digest);
    if (!p) throw new FanoutError('FANOUT_ERR_BLOB_UNKNOWN', { digest });
    return p;
  }

  /** Streams an upload to disk while hashing it, then files it under its digest and signs it. */
  async push(body: Readable): Promise<PackageRef> {
    const tmpDir = join(this.dataDir, 'blobs', 'tmp');
    await mkdir(tmpDir, { recursive: true });
    const tmp = join(tmpDir, `${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}`);
    const hash = createHash('sha256');
    try {
      await pipeline(
        body,
        async function* (src) {
          for await (const chunk of src) {
            hash.update(chunk);
            yield chunk;
          }
        },
        createWriteStream(tmp),
      );
      const manifest = await inspectPackage(tmp, this.limits, 'the uploaded package');
      const digest = `sha256:${hash.digest('hex')}`;
      const size = (await stat(tmp)).size;
      const existing = await this.db
        .selectFrom('packages')
        .selectAll()
        .where('name', '=', manifest.name)
        .where('version', '=', manifest.version)
        .executeTakeFirst();
      if (existing && existing.digest !== digest)
        throw new FanoutError('FANOUT_ERR_PACKAGE_EXISTS', {
          name: manifest.name,
          version: manifest.version,
          digest: existing.digest,
        });
      const final = this.blobPath(digest);
      await mkdir(dirname(final), { recursive: true });
      if (!existsSync(final)) await rename(tmp, final);
      const ref = { name: manifest.name, version: manifest.version, digest, size };
      const signature = signPackage(this.privateKey(), ref);
      if (!existing)
        await this.db
          .insertInto('packages')
          .values({ ...ref, signature, created_at: new Date().toISOString() })
          .execute();
      return { ...ref, signature };
    } finally {
      await rm(tmp, { force: true });
    }
  }

  async list(page: Page = FIRST_PAGE) {
    return this.db
      .selectFrom('packages')
      .selectAll()
      .orderBy('name')
      .orderBy('created_at')
      .limit(page.limit)
      .offset(page.offset)
      .execute();
  }

  async resolve(spec: string): Promise<PackageRef> {
    const at = spec.lastIndexOf('@');
    if (at <= 0)
      throw new FanoutError('FANOUT_ERR_INPUT_INVALID', { detail: `package "${spec}" must be NAME@VERSION` });
    const name = spec.slice(0, at);
    const version = spec.slice(at + 1);
    const row = await this.db
      .selectFrom('packages')
      .selectAll()
      .where('name', '=', name)
      .where('version', '=', version)
      .executeTakeFirst();
    if (!row) throw new FanoutError('FANOUT_ERR_PACKAGE_UNKNOWN', { name, version });
    return {
      name: row.name,
      version: row.version,
      digest: row.digest,
      size: Number(row.size),
      signature: row.signature,
    };
  }
}
