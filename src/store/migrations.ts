// Numbered migrations: append only, never edit one that has landed.
// Long because it is the schema's whole history, one entry a change, and each must stay as it landed.
import { type Kysely, type Migration, sql } from 'kysely';
import { rebuildDevicePackages } from './device-packages-rebuild.ts';

type Dialect = 'sqlite' | 'postgres';

const autoId = (d: Dialect) => (d === 'postgres' ? 'serial primary key' : 'integer primary key autoincrement');

export function migrations(dialect: Dialect): Record<string, Migration> {
  return {
    '0001_initial': {
      async up(db: Kysely<any>) {
        const ddl = [
          `create table centers (id text primary key, name text not null, email text not null)`,
          `create table locations (code text primary key, name text not null, center text not null)`,
          `create table devices (id text primary key, kind text not null, location text not null, relay text, upstream text, labels text not null, hostname text, token_hash text)`,
          `create table packages (name text not null, version text not null, digest text not null, size bigint not null, signature text not null, created_at text not null, primary key (name, version))`,
          `create table jobs (id text primary key, packages text not null, params text not null, created_at text not null, created_by text not null)`,
          `create table commands (seq ${autoId(dialect)}, command_id text not null unique, job_id text not null, relay_id text not null, kind text not null, body text not null, issued_at text not null, acked_at text)`,
          `create index commands_relay on commands (relay_id, seq)`,
          `create table targets (job_id text not null, device_id text not null, relay_id text not null, state text not null, attempt integer not null, failure_type text, error text, updated_at text not null, primary key (job_id, device_id))`,
          `create table relay_jobs (job_id text not null, relay_id text not null, state text not null, failure_type text, error text, updated_at text not null, primary key (job_id, relay_id))`,
          `create table relays (id text primary key, url text, admin_token text, last_heartbeat text, down_since text)`,
          `create table alerts (id ${autoId(dialect)}, source text not null, alert_id text not null, received_at text not null, at text not null, raw text not null, format text not null, device_id text, failure_type text, location text, location_reported text, job_id text, message text, outcome text not null, steps text not null, ticket_id text, counted integer not null, unique (source, alert_id))`,
          `create index alerts_track on alerts (device_id, failure_type, at)`,
          `create table failed_distributions (id ${autoId(dialect)}, relay_id text not null, job_id text not null, failure_type text not null, first_seen text not null, last_seen text not null, alert_count integer not null, ticket_id text, state text not null)`,
          `create index failed_by_job on failed_distributions (relay_id, job_id)`,
          `create table tickets (id text primary key, device_id text not null, failure_type text not null, state text not null, center_id text, location text, alert_ids text not null, jobs text not null, summary text not null, created_at text not null, updated_at text not null, mail_attempts integer not null, mail_error text, resolve_key text not null)`,
          `create table outbox (id ${autoId(dialect)}, ticket_id text not null, recipients text not null, subject text not null, body text not null, attempts integer not null, next_at text not null, state text not null, last_error text)`,
          `create table outages (id text primary key, device_id text, location text, from_at text not null, until_at text not null, reason text not null, created_at text not null)`,
          `create table device_overrides (device_id text not null, failure_type text not null, threshold integer not null, primary key (device_id, failure_type))`,
          `create table plans (id text primary key, relay_id text not null, job_id text not null, body text not null, state text not null, created_at text not null, updated_at text not null)`,
        ];
        for (const stmt of ddl) await sql.raw(stmt).execute(db);
      },
    },
    '0003_mail_per_recipient': {
      async up(db: Kysely<any>) {
        // Mail is delivered per recipient (accepted ones are not mailed again, permanent refusals are
        // final), given up after a time, and claimed by one master at a time.
        for (const stmt of [
          `alter table outbox add column delivered text not null default '[]'`,
          `alter table outbox add column refused text not null default '[]'`,
          `alter table outbox add column first_at text`,
          `alter table outbox add column claimed_until text`,
        ])
          await sql.raw(stmt).execute(db);
      },
    },
    '0004_blobs_and_claims': {
      async up(db: Kysely<any>) {
        // Package content shared by masters on several hosts (`--blobs postgres`): chunks, so a blob is
        // streamed in and out and never held whole in memory.
        const bytes = dialect === 'postgres' ? 'bytea' : 'blob';
        for (const stmt of [
          `create table blobs (digest text primary key, size bigint not null, chunk_size integer not null, created_at text not null)`,
          `create table blob_chunks (digest text not null, seq integer not null, data ${bytes} not null, primary key (digest, seq))`,
          // Periodic work done by one master at a time (RELAY_DOWN checks, asking relays for plans).
          `create table claims (name text primary key, holder text not null, until_at text not null)`,
        ])
          await sql.raw(stmt).execute(db);
      },
    },
    '0005_trees_and_verifications': {
      async up(db: Kysely<any>) {
        // Signed trees and attestations (DESIGN §17).
        for (const stmt of [
          `alter table packages add column tree text`,
          `alter table packages add column files text`,
          `alter table targets add column attestation text`,
          `create table verifications (id ${autoId(dialect)}, request_id text, device_id text not null, package text not null, version text not null, state text not null, tree text, detail text, at text not null)`,
          `create index verifications_request on verifications (request_id)`,
          `create index verifications_device on verifications (device_id, id)`,
        ])
          await sql.raw(stmt).execute(db);
      },
    },
    '0006_people': {
      async up(db: Kysely<any>) {
        // Users with roles, and the audit log of every change (DESIGN §14).
        for (const stmt of [
          `create table users (name text primary key, role text not null, token_hash text not null unique, created_at text not null)`,
          `create table audit (id ${autoId(dialect)}, at text not null, who text not null, action text not null, target text, source text)`,
        ])
          await sql.raw(stmt).execute(db);
      },
    },
    '0007_webhooks': {
      async up(db: Kysely<any>) {
        // Ticket and job events to webhooks, delivered like mail: retried, claimed by one master.
        await sql
          .raw(
            `create table webhook_outbox (id ${autoId(dialect)}, url text not null, event text not null, body text not null, attempts integer not null, next_at text not null, state text not null, last_error text, claimed_until text)`,
          )
          .execute(db);
      },
    },
    '0008_rollouts': {
      async up(db: Kysely<any>) {
        // Rollouts in rings (DESIGN §13): each ring is a job; the rollout decides when the next one starts.
        await sql
          .raw(
            `create table rollouts (id text primary key, packages text not null, params text not null, rings text not null, halt_rate real not null, ring_wait_ms integer not null, state text not null, current integer not null, reason text, created_at text not null, updated_at text not null, created_by text not null)`,
          )
          .execute(db);
      },
    },
    '0009_fallback_relays': {
      async up(db: Kysely<any>) {
        await sql.raw(`alter table devices add column fallback_relays text`).execute(db);
      },
    },
    '0010_maintenance_windows': {
      async up(db: Kysely<any>) {
        await sql
          .raw(
            `create table maintenance_windows (id ${autoId(dialect)}, location text, label text, cron text not null, duration_ms integer not null, tz text not null)`,
          )
          .execute(db);
      },
    },
    '0011_relay_rate_limit': {
      async up(db: Kysely<any>) {
        await sql.raw(`alter table devices add column rate_limit_kbps real`).execute(db);
      },
    },
    '0012_generations': {
      async up(db: Kysely<any>) {
        // A counter per kind of data that processes keep prepared in memory (the alert center's
        // locations): bumped in the transaction that changes it, read in the one that uses it.
        await sql.raw(`create table generations (name text primary key, value integer not null)`).execute(db);
      },
    },
    '0013_targets_by_state': {
      async up(db: Kysely<any>) {
        // `job list --state` asks whether a job has a target in a state; a job's counts read it too.
        await sql.raw(`create index targets_state on targets (job_id, state)`).execute(db);
      },
    },
    '0014_device_packages': {
      async up(db: Kysely<any>) {
        for (const stmt of [
          `create table device_packages (device_id text not null, name text not null, version text not null, state text not null, at text not null, primary key (device_id, name))`,
          `create index device_packages_version on device_packages (name, version)`,
          `create table device_seen (device_id text primary key, at text not null)`,
        ])
          await sql.raw(stmt).execute(db);
        await rebuildDevicePackages(db);
      },
    },
    '0002_lookup_indexes': {
      async up(db: Kysely<any>) {
        // The alert center looks devices up by hostname and open tickets by device and type on every alert.
        for (const stmt of [
          `create index devices_hostname on devices (hostname)`,
          `create index tickets_open on tickets (device_id, failure_type, state)`,
          `create index outages_device on outages (device_id)`,
          `create index outages_location on outages (location)`,
          `create index targets_relay on targets (relay_id, job_id)`,
        ])
          await sql.raw(stmt).execute(db);
      },
    },
    '0015_device_lookups': {
      async up(db: Kysely<any>) {
        for (const stmt of [
          // Every request a relay or an endpoint makes to the master names its device by its token's
          // hash: without this, each read every device (12 ms a request at 100,000 devices).
          `create index devices_token_hash on devices (token_hash)`,
          // An alert sent with a relay's token is checked against the relay's own devices (16 ms
          // a request at 100,000 devices without these; 0.2 ms with them).
          `create index devices_relay on devices (relay)`,
          `create index devices_upstream on devices (upstream)`,
        ])
          await sql.raw(stmt).execute(db);
      },
    },
    '0016_targets_by_device': {
      async up(db: Kysely<any>) {
        // An endpoint that turns to a fallback relay has its open targets moved (failover.ts): without
        // this, each read every target, 150 ms at 1.1 million on SQLite, holding the master's loop, and a
        // site of 100 endpoints does it 100 times. It makes inserting a job's 100,000 targets 0.4 s slower.
        await sql.raw(`create index targets_device on targets (device_id)`).execute(db);
      },
    },
    '0017_key_rotations': {
      async up(db: Kysely<any>) {
        // Masters on separate hosts each keep a copy of the signing key: a rotation made on one is
        // served by all from here, so relays enrolled at any of them follow it (master/keys.ts).
        await sql.raw(`create table key_rotations (seq integer primary key, statement text not null)`).execute(db);
      },
    },
    '0018_shared_secrets': {
      async up(db: Kysely<any>) {
        // HMAC keys the masters share and a key rotation leaves alone (master/shared-secrets.ts).
        await sql.raw(`create table shared_secrets (name text primary key, value text not null)`).execute(db);
      },
    },
    '0019_job_rollouts': {
      async up(db: Kysely<any>) {
        // The rollout a ring's job belongs to (`fanout job list`), filled in from the rollouts' rings.
        await sql.raw(`alter table jobs add column rollout_id text`).execute(db);
        for (const r of await db.selectFrom('rollouts').select(['id', 'rings']).execute())
          for (const ring of JSON.parse(r.rings) as { jobId: string | null }[])
            if (ring.jobId)
              await db.updateTable('jobs').set({ rollout_id: r.id }).where('id', '=', ring.jobId).execute();
      },
    },
    '0020_job_completions': {
      async up(db: Kysely<any>) {
        // A job complete at a relay is announced (job.complete) once: the insert that records it is
        // the one decision, even when two masters take its completing reports at once. Jobs already
        // complete are recorded as announced.
        await sql
          .raw(
            `create table job_completions (job_id text not null, relay_id text not null, at text not null, primary key (job_id, relay_id))`,
          )
          .execute(db);
        await sql
          .raw(
            `insert into job_completions (job_id, relay_id, at) select job_id, relay_id, max(updated_at) from targets group by job_id, relay_id having count(*) = sum(case when state = 'installed' then 1 else 0 end)`,
          )
          .execute(db);
      },
    },
  };
}
