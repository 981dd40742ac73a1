// Failure types Fanout itself raises. Alerts from outside may carry others (any UPPER_SNAKE_CASE).
// A plain list, so the agent need not load zod; protocol/types.ts has its schema.
export const FAILURE_TYPES = [
  'DISK_FULL', // a relay's depot or job log refused a write (ENOSPC, EDQUOT)
  'UNREACHABLE', // an upstream or relay did not answer
  'FETCH_FAILED', // an upstream answered, but not with the content
  'DIGEST_MISMATCH', // content whose SHA-256 or size is not the signed one
  'SIGNATURE_INVALID', // a package or command whose signature (or list proof) does not verify
  'EXPIRED', // a command past its expiry
  'DOWNGRADE_REFUSED', // a lower version than the one installed, without a signed allowDowngrade
  'DEADLINE', // the job's deadline passed first
  'CANCELLED', // the master cancelled the job
  'INSTALL_FAILED', // the install script (or pre/post command) failed
  'INSTALL_TIMEOUT', // the install script ran past its timeout
  'UNSAFE_ARCHIVE', // an archive entry breaks the archive rules
  'EXTRACT_FAILED', // the archive could not be extracted
  'PACKAGE_INVALID', // the archive's fanout.json does not match the command
  'RELAY_DOWN', // a relay missed its heartbeats
  'TAMPERED', // the installed files' tree hash is not the signed one (attestation)
  'DRIFT', // installed files changed, went missing or appeared after the install
  'ROLLOUT_HALTED', // a ring of a rollout failed past its limit: the next rings wait for an operator
  'UNKNOWN',
] as const;
export type FailureType = (typeof FAILURE_TYPES)[number];

/** Alert failure types: ours, or any other UPPER_SNAKE_CASE name a monitoring system sends. */
export const FAILURE_TYPE_NAME = /^[A-Z][A-Z0-9_]*$/;
