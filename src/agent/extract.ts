// Safe extraction: the whole archive is checked against the archive rules before anything is written.
import { mkdir } from 'node:fs/promises';
import * as tar from 'tar';
import { type ArchiveLimits, ArchiveRefused, DEFAULT_LIMITS, inspectArchive } from '../protocol/archive.ts';

export class UnsafeArchiveError extends Error {
  override name = 'UnsafeArchiveError';
}

export async function extractSafely(file: string, into: string, limits: ArchiveLimits = DEFAULT_LIMITS) {
  try {
    await inspectArchive(file, limits);
  } catch (e) {
    if (e instanceof ArchiveRefused) throw new UnsafeArchiveError(e.message);
    throw e;
  }
  await mkdir(into, { recursive: true });
  // umask 0: files get exactly the modes that were signed (the archive rules refuse unsafe ones).
  await tar.x({ file, cwd: into, strict: true, preservePaths: false, noChmod: false, preserveOwner: false, umask: 0 });
}
