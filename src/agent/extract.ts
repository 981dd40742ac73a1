// Safe extraction into a new staging folder: nothing that breaks the archive rules is written, and a
// refused archive's folder is removed by the caller before anything runs or is switched to.
import { type ArchiveLimits, ArchiveRefused, DEFAULT_LIMITS, inspectArchive } from '../protocol/archive.ts';

export class UnsafeArchiveError extends Error {
  override name = 'UnsafeArchiveError';
}

export async function extractSafely(file: string, into: string, limits: ArchiveLimits = DEFAULT_LIMITS) {
  // One pass: each entry is checked against the archive rules and written if it passes; the caller
  // removes `into` when the archive is refused.
  try {
    return await inspectArchive(file, limits, into);
  } catch (e) {
    if (e instanceof ArchiveRefused) throw new UnsafeArchiveError(e.message);
    throw e;
  }
}
