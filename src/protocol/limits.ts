// The archive rules' limits, apart from the rules themselves: an idle agent needs the numbers, not tar.
export interface ArchiveLimits {
  maxUnpackedBytes: number;
  maxFiles: number;
}
export const DEFAULT_LIMITS: ArchiveLimits = { maxUnpackedBytes: 4 * 1024 ** 3, maxFiles: 100_000 };

/** `POST /api/v1/alerts` takes at most this many alerts a request (a relay passing on many sends parts). */
export const MAX_ALERTS_PER_REQUEST = 10_000;
