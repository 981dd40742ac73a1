// The archive rules' limits, apart from the rules themselves: an idle agent needs the numbers, not tar.
export interface ArchiveLimits {
  maxUnpackedBytes: number;
  maxFiles: number;
}
export const DEFAULT_LIMITS: ArchiveLimits = { maxUnpackedBytes: 4 * 1024 ** 3, maxFiles: 100_000 };
