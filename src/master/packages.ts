// The package store: content by SHA-256 in a blob store (DESIGN §15), signed metadata in the database.
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ArchiveLimits } from '../protocol/archive.ts';
import { signPackage } from '../protocol/crypto.ts';
import { isDigest } from '../protocol/digest.ts';
import { FanoutError } from '../protocol/errors.ts';
import { inspectPackage } from '../protocol/package-file.ts';
import { FIRST_PAGE, type Page } from '../protocol/page.ts';
import { treeHash } from '../protocol/tree.ts';
import type { PackageRef } from '../protocol/types.ts';
import type { Db } from '../store/index.ts';
import type { BlobStore } from './blobs.ts';
import { packageSignedNow, type SigningKeys } from './resign.ts';

export class PackageStore {
  constructor(
    private readonly db: Db,
    readonly blobs: BlobStore,
    /** The signing key in force (it changes with `fanout key rotate`), and every key it replaced. */
    private readonly key: SigningKeys,
    private readonly limits: ArchiveLimits,
  ) {}

  async blob(digest: string) {
    const found = isDigest(digest) ? await this.blobs.open(digest) : undefined;
    if (!found) throw new FanoutError('FANOUT_ERR_BLOB_UNKNOWN', { digest });
    return found;
  }

  /** Streams an upload to scratch space while hashing it, checks it, files it under its digest, signs it. */
  async push(body: Readable): Promise<PackageRef> {
    const tmpDir = this.blobs.scratch;
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
      const { manifest, entries } = await inspectPackage(tmp, this.limits, 'the uploaded package');
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
      // Content first, then the row that makes it known: a package is never listed without its bytes.
      if (!(await this.blobs.open(digest))) await this.blobs.put(digest, tmp);
      const ref = { name: manifest.name, version: manifest.version, digest, size, tree: treeHash(entries) };
      const signature = signPackage(this.key.privatePem, ref);
      if (!existing)
        await this.db
          .insertInto('packages')
          .values({ ...ref, files: JSON.stringify(entries), signature, created_at: new Date().toISOString() })
          .onConflict((oc) => oc.columns(['name', 'version']).doNothing())
          .execute();
      return { ...ref, signature };
    } finally {
      await rm(tmp, { force: true });
    }
  }

  /** Packages with their signed trees: each file's path, mode and SHA-256 (DESIGN §17). */
  async list(page: Page = FIRST_PAGE) {
    const rows = await this.db
      .selectFrom('packages')
      .selectAll()
      .orderBy('name')
      .orderBy('created_at')
      .limit(page.limit)
      .offset(page.offset)
      .execute();
    return rows.map((r) => ({
      ...r,
      size: Number(r.size),
      files: r.files ? (JSON.parse(r.files) as unknown[]) : null,
    }));
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
    const ref = {
      name: row.name,
      version: row.version,
      digest: row.digest,
      size: Number(row.size),
      ...(row.tree ? { tree: row.tree } : {}),
    };
    // Signed at its push, perhaps by a key this master has since rotated from (resign.ts).
    return packageSignedNow(this.key, { ...ref, signature: row.signature });
  }
}
