// Where the master keeps package content (DESIGN §15): its own folder, a folder several masters share
// (`--blobs DIR`), or the database they share (`--blobs postgres`), in chunks streamed in and out.
import { createReadStream } from 'node:fs';
import { mkdir, rename } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import type { Transaction } from 'kysely';
import { type BlobSource, fileSource } from '../common/content.ts';
import { digestPath, isDigest } from '../protocol/digest.ts';
import { FanoutError } from '../protocol/errors.ts';
import type { Database, Db, Store } from '../store/index.ts';

export interface BlobStore {
  /** A folder on this host for an upload being checked before it is filed. */
  readonly scratch: string;
  open(digest: string): Promise<BlobSource | undefined>;
  /** Files a checked upload under its digest (the file may be moved away). Filing twice is harmless. */
  put(digest: string, file: string): Promise<void>;
}

export class FolderBlobs implements BlobStore {
  constructor(private readonly root: string) {}

  get scratch() {
    // Inside the root, so filing is a rename on the same file system, also on a shared mount.
    return join(this.root, 'tmp');
  }

  async open(digest: string) {
    const path = digestPath(this.root, digest);
    return path ? fileSource(path) : undefined;
  }

  async put(digest: string, file: string) {
    const path = digestPath(this.root, digest);
    if (!path) throw new Error(`not a content digest: ${digest}`);
    await mkdir(dirname(path), { recursive: true });
    // Atomic: a master reading it sees the whole blob or none; two masters filing it write the same bytes.
    await rename(file, path);
  }
}

export class DatabaseBlobs implements BlobStore {
  constructor(
    private readonly db: Db,
    private readonly exclusive: (tx: Transaction<Database>, name: string) => Promise<void>,
    readonly scratch: string,
    private readonly chunkSize = 1 << 20,
  ) {}

  async open(digest: string) {
    if (!isDigest(digest)) return undefined;
    const row = await this.db
      .selectFrom('blobs')
      .select(['size', 'chunk_size'])
      .where('digest', '=', digest)
      .executeTakeFirst();
    if (!row) return undefined;
    const db = this.db;
    const cs = row.chunk_size;
    // One chunk in memory at a time, read only as the client takes it.
    async function* chunks(start: number, end: number) {
      for (let seq = Math.floor(start / cs); seq <= Math.floor(end / cs); seq++) {
        const c = await db
          .selectFrom('blob_chunks')
          .select('data')
          .where('digest', '=', digest)
          .where('seq', '=', seq)
          .executeTakeFirst();
        if (!c) throw new Error(`blob ${digest} has lost chunk ${seq}`);
        yield c.data.subarray(Math.max(0, start - seq * cs), Math.min(c.data.length, end - seq * cs + 1));
      }
    }
    return { size: Number(row.size), stream: (start: number, end: number) => Readable.from(chunks(start, end)) };
  }

  async put(digest: string, file: string) {
    await this.db.transaction().execute(async (tx) => {
      // Two masters filing the same upload: the second waits for the first, then finds it filed.
      await this.exclusive(tx, `blob ${digest}`);
      const had = await tx.selectFrom('blobs').select('digest').where('digest', '=', digest).executeTakeFirst();
      if (had) return;
      let seq = 0;
      let size = 0;
      for await (const data of exactChunks(createReadStream(file), this.chunkSize)) {
        await tx.insertInto('blob_chunks').values({ digest, seq: seq++, data }).execute();
        size += data.length;
      }
      await tx
        .insertInto('blobs')
        .values({ digest, size, chunk_size: this.chunkSize, created_at: new Date().toISOString() })
        .execute();
    });
  }
}

/** Re-cuts a stream into chunks of exactly `size` bytes (the last one shorter), so chunk N starts at N × size. */
async function* exactChunks(src: AsyncIterable<Buffer>, size: number) {
  let parts: Buffer[] = [];
  let have = 0;
  for await (const chunk of src) {
    parts.push(chunk);
    have += chunk.length;
    while (have >= size) {
      const all = Buffer.concat(parts);
      yield all.subarray(0, size);
      parts = [all.subarray(size)];
      have -= size;
    }
  }
  if (have) yield Buffer.concat(parts);
}

/** `--blobs`: "postgres", a folder, or (none) DATA/blobs. */
export function blobStoreFor(blobs: string | undefined, data: string, store: Store) {
  if (blobs !== 'postgres') return new FolderBlobs(blobs ? resolve(blobs) : join(data, 'blobs'));
  if (store.dialect !== 'postgres')
    throw new FanoutError('FANOUT_ERR_INPUT_INVALID', {
      detail: '--blobs postgres keeps package content in the database: it needs --db postgres://…',
    });
  return new DatabaseBlobs(store.db, store.exclusive, join(data, 'blobs', 'tmp'));
}
