// Table shapes of the master database. Times are ISO-8601 text; JSON is stored as text.
// Long because every table is listed in one place, as the migrations make them: one entry per table.
import type { ColumnType, Generated } from 'kysely';

export interface Database {
  centers: { id: string; name: string; email: string };
  locations: { code: string; name: string; center: string };
  /** Bumped by each change to data that processes keep prepared in memory (migration 0012). */
  generations: { name: string; value: number };
  /** `fanout key rotate`'s statements, in order (JSON), served to relays by every master (migration 0017). */
  key_rotations: { seq: number; statement: string };
  shared_secrets: { name: string; value: string };
  devices: {
    id: string;
    kind: string;
    location: string;
    relay: string | null;
    upstream: string | null;
    labels: string;
    hostname: string | null;
    token_hash: string | null;
    /** JSON list of relay ids an endpoint turns to when its relay is unreachable. */
    fallback_relays: string | null;
    /** Relays: the inventory's cap on fetching and serving, KB/s. */
    rate_limit_kbps: number | null;
  };
  packages: {
    name: string;
    version: string;
    digest: string;
    size: number;
    signature: string;
    created_at: string;
    /** The tree hash and its entries (JSON), DESIGN §17; null for packages pushed before trees. */
    tree: string | null;
    files: string | null;
  };
  jobs: {
    id: string;
    packages: string;
    params: string;
    created_at: string;
    created_by: string;
    /** The rollout whose ring this job is (null for a job of its own); optional on insert. */
    rollout_id: ColumnType<string | null, string | null | undefined, string | null>;
  };
  commands: {
    seq: Generated<number>;
    command_id: string;
    job_id: string;
    relay_id: string;
    kind: string;
    body: string;
    issued_at: string;
    acked_at: string | null;
  };
  targets: {
    job_id: string;
    device_id: string;
    relay_id: string;
    state: string;
    attempt: number;
    failure_type: string | null;
    error: string | null;
    updated_at: string;
    /** The tree hashes the endpoint attested, `{"name@version": hash}` (JSON). */
    attestation: string | null;
  };
  relay_jobs: {
    job_id: string;
    relay_id: string;
    state: string;
    failure_type: string | null;
    error: string | null;
    updated_at: string;
  };
  relays: {
    id: string;
    url: string | null;
    admin_token: string | null;
    last_heartbeat: string | null;
    down_since: string | null;
  };
  alerts: {
    id: Generated<number>;
    source: string;
    alert_id: string;
    received_at: string;
    at: string;
    raw: string;
    format: string;
    device_id: string | null;
    failure_type: string | null;
    location: string | null;
    location_reported: string | null;
    job_id: string | null;
    message: string | null;
    outcome: string;
    steps: string;
    ticket_id: string | null;
    counted: number;
  };
  failed_distributions: {
    id: Generated<number>;
    relay_id: string;
    job_id: string;
    failure_type: string;
    first_seen: string;
    last_seen: string;
    alert_count: number;
    ticket_id: string | null;
    state: string;
  };
  tickets: {
    id: string;
    device_id: string;
    failure_type: string;
    state: string;
    center_id: string | null;
    location: string | null;
    alert_ids: string;
    jobs: string;
    summary: string;
    created_at: string;
    updated_at: string;
    mail_attempts: number;
    mail_error: string | null;
    resolve_key: string;
  };
  outbox: {
    id: Generated<number>;
    ticket_id: string;
    recipients: string;
    subject: string;
    body: string;
    attempts: number;
    next_at: string;
    state: string;
    last_error: string | null;
    delivered: Generated<string>;
    refused: Generated<string>;
    first_at: string | null;
    claimed_until: string | null;
  };
  /** Package content kept in PostgreSQL (`fanout master --blobs postgres`), in chunks. */
  blobs: { digest: string; size: number; chunk_size: number; created_at: string };
  blob_chunks: { digest: string; seq: number; data: Buffer };
  claims: { name: string; holder: string; until_at: string };
  users: { name: string; role: string; token_hash: string; created_at: string };
  maintenance_windows: {
    id: Generated<number>;
    location: string | null;
    label: string | null;
    cron: string;
    duration_ms: number;
    tz: string;
  };
  rollouts: {
    id: string;
    packages: string;
    params: string;
    /** JSON: [{percent, devices, jobId, endedAt, failureRate}] */
    rings: string;
    halt_rate: number;
    ring_wait_ms: number;
    state: string;
    current: number;
    reason: string | null;
    created_at: string;
    updated_at: string;
    created_by: string;
  };
  /** Jobs complete at a relay, each announced once (job.complete). */
  job_completions: {
    job_id: string;
    relay_id: string;
    at: string;
  };
  webhook_outbox: {
    id: Generated<number>;
    url: string;
    event: string;
    body: string;
    attempts: number;
    next_at: string;
    state: string;
    last_error: string | null;
    claimed_until: string | null;
  };
  audit: {
    id: Generated<number>;
    at: string;
    who: string;
    action: string;
    target: string | null;
    source: string | null;
  };
  /** What each device runs, kept as targets and verifications are written (device-packages.ts). */
  device_packages: {
    device_id: string;
    name: string;
    version: string;
    /** attested, installed, drift, tampered, failed; removed once an uninstall job ran. */
    state: string;
    at: string;
  };
  /** When a device was last heard of: a target's step or a verification. */
  device_seen: { device_id: string; at: string };
  /** Endpoints' re-verifications of their installed versions (DESIGN §17). */
  verifications: {
    id: Generated<number>;
    request_id: string | null;
    device_id: string;
    package: string;
    version: string;
    state: string;
    tree: string | null;
    detail: string | null;
    at: string;
  };
  outages: {
    id: string;
    device_id: string | null;
    location: string | null;
    from_at: string;
    until_at: string;
    reason: string;
    created_at: string;
  };
  device_overrides: { device_id: string; failure_type: string; threshold: number };
  plans: {
    id: string;
    relay_id: string;
    job_id: string;
    body: string;
    state: string;
    created_at: string;
    updated_at: string;
  };
}
