// One suite, two stores: SQLite and the machine's real PostgreSQL run the same checks.
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, Migrator, PostgresDialect, SqliteDialect, sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AlertCenter } from '../src/alerts/center.ts';
import { Mailer } from '../src/alerts/mailer.ts';
import { parseJsonAlert, parseTextLine } from '../src/alerts/parse.ts';
import { Tickets } from '../src/alerts/tickets.ts';
import { type Announce, type WebhookEvent, Webhooks } from '../src/alerts/webhooks.ts';
import type { BlobSource } from '../src/common/content.ts';
import { Faults } from '../src/common/faults.ts';
import { MailSink } from '../src/lab/mail-sink.ts';
import { DatabaseBlobs, FolderBlobs } from '../src/master/blobs.ts';
import { parseConfig } from '../src/master/config.ts';
import { fleetView } from '../src/master/fleet.ts';
import { importInventory, parseInventory } from '../src/master/inventory.ts';
import { type JOB_STATES, jobList } from '../src/master/job-view.ts';
import { Jobs } from '../src/master/jobs.ts';
import { People } from '../src/master/people.ts';
import { RelayRegistry } from '../src/master/relays.ts';
import { writeTargets } from '../src/master/target-writes.ts';
import { DeviceVerification } from '../src/master/verify.ts';
import { FanoutError } from '../src/protocol/errors.ts';
import { RelayReport } from '../src/protocol/types.ts';
import { rebuildDevicePackages } from '../src/store/device-packages-rebuild.ts';
import { generationsOf, openStore, readTogether, type Store } from '../src/store/index.ts';
import { migrations } from '../src/store/migrations.ts';
import { inventoryYaml, queueMail, tempDir } from './helpers.ts';
import { pgDatabase } from './pg.ts';

const backends: { name: string; open: () => Promise<{ url: string; drop(): Promise<void> }> }[] = [
  { name: 'sqlite', open: async () => ({ url: join(tempDir('store'), 'master.db'), drop: async () => {} }) },
  { name: 'postgres', open: pgDatabase },
];

for (const backend of backends) {
  describe(`store contract: ${backend.name}`, () => {
    let store: Store;
    let db: { url: string; drop(): Promise<void> };
    const cfg = parseConfig(
      'alerts: { failureTypes: { DISK_FULL: { threshold: 1, patterns: [ENOSPC] }, UNREACHABLE: { threshold: 2, patterns: [timed out] } } }',
    );

    beforeAll(async () => {
      db = await backend.open();
      store = await openStore(db.url);
      await importInventory(store.db, await parseInventory(inventoryYaml(['relay-x'], 2)));
    });
    afterAll(async () => {
      await store?.close();
      await db?.drop();
    });

    it('narrows the audit log by person, target, a part of the action (wildcards taken as text) and time', async () => {
      const at = (m: number) => new Date(Date.UTC(2026, 0, 1, 0, m)).toISOString();
      await store.db
        .insertInto('audit')
        .values([
          { at: at(1), who: 'ann', action: 'POST /api/v1/overrides', target: 'x DISK_FULL=2', source: '::1' },
          { at: at(2), who: 'bob', action: 'POST /api/v1/jobs', target: 'j-1', source: '::1' },
          { at: at(3), who: 'ann', action: 'POST /api/v1/plans/:id/approve', target: 'p-1', source: '::1' },
          { at: at(4), who: 'ann', action: 'POST /api/v1/100%_done', target: 'j-1', source: '::1' },
        ])
        .execute();
      const people = new People(store.db);
      const page = { limit: 100, offset: 0 };
      const targets = async (only: Parameters<People['auditLog']>[1]) =>
        (await people.auditLog(page, only)).map((a) => a.target);
      expect(await targets({ who: 'ann' })).toEqual(['j-1', 'p-1', 'x DISK_FULL=2']);
      expect(await targets({ target: 'j-1' })).toEqual(['j-1', 'j-1']);
      expect(await targets({ action: 'Plans' })).toEqual(['p-1']);
      expect(await targets({ action: '%_' })).toEqual(['j-1']);
      expect(await targets({ action: 'p_st' })).toEqual([]); // as a wildcard it would match "post"
      expect(await targets({ who: 'ann', since: at(2) })).toEqual(['j-1', 'p-1']);
      await store.db.deleteFrom('audit').execute();
    });

    it("lists jobs by the state their targets add up to, as each job's view shows it", async () => {
      const at = (m: number) => new Date(Date.UTC(2026, 0, 2, 0, m)).toISOString();
      const jobs: [string, string[]][] = [
        ['j-none', []], // no targets yet: running
        ['j-going', ['installed', 'downloading']],
        ['j-window', ['waiting_window']],
        ['j-done', ['installed', 'installed']],
        ['j-bad', ['installed', 'failed']],
        ['j-allbad', ['failed']],
      ];
      for (const [i, [id, states]] of jobs.entries()) {
        await store.db
          .insertInto('jobs')
          .values({ id, packages: '[]', params: '{}', created_at: at(i), created_by: 'ann' })
          .execute();
        for (const [k, state] of states.entries())
          await store.db
            .insertInto('targets')
            .values({ job_id: id, device_id: `d${k}`, relay_id: 'relay-x', state, attempt: 1, updated_at: at(i) })
            .execute();
      }
      const page = { limit: 100, offset: 0 };
      const ids = async (state?: (typeof JOB_STATES)[number]) =>
        (await jobList(store.db, { ...page, state }, true)).map((j) => `${j.jobId} ${j.state}`);
      expect(await ids('running')).toEqual(['j-window running', 'j-going running', 'j-none running']);
      expect(await ids('complete')).toEqual(['j-done complete']);
      expect(await ids('failed')).toEqual(['j-allbad failed', 'j-bad failed']);
      expect(await ids()).toHaveLength(6);
      expect((await jobList(store.db, { limit: 1, offset: 1, state: 'running' }, true))[0].jobId).toBe('j-going');
      await store.db.deleteFrom('targets').execute();
      await store.db.deleteFrom('jobs').execute();
    });

    it('keeps what each device runs as reports arrive, in their own time order, as the fleet view shows it', async () => {
      const at = (m: number) => new Date(Date.UTC(2026, 0, 3, 0, m)).toISOString();
      const [p1, p2] = ['relay-x-pos-1', 'relay-x-pos-2'];
      const jobs: [string, string, Record<string, unknown>][] = [
        ['j-one', 'app@1.0.0', {}],
        ['j-two', 'app@2.0.0', {}],
        ['j-gone', 'app@1.0.0', { uninstall: 'app' }],
      ];
      for (const [id, spec, params] of jobs) {
        const [name, version] = spec.split('@');
        await store.db
          .insertInto('jobs')
          .values({
            id,
            packages: JSON.stringify([{ name, version, digest: `sha256:${'a'.repeat(64)}`, size: 1, signature: 's' }]),
            params: JSON.stringify(params),
            created_at: at(0),
            created_by: 'ann',
          })
          .execute();
        for (const device of [p1, p2])
          await store.db
            .insertInto('targets')
            .values({
              job_id: id,
              device_id: device,
              relay_id: 'relay-x',
              state: 'pending',
              attempt: 0,
              updated_at: at(0),
            })
            .execute();
      }
      const report = (relayId: string, rows: [string, string, string, number, string | null][]) =>
        store.db.transaction().execute((tx) =>
          writeTargets(
            tx,
            relayId,
            rows.map(([job_id, device_id, state, m, failure_type]) => ({
              job_id,
              device_id,
              state,
              attempt: 1,
              failure_type,
              error: null,
              updated_at: at(m),
              attestation: state === 'installed' ? '{"app@x":"h"}' : null,
            })),
          ),
        );
      await report('relay-x', [
        [`j-one`, p1, 'installed', 1, null],
        [`j-two`, p1, 'failed', 2, 'INSTALL_FAILED'], // 2.0.0 never ran: 1.0.0 still does, attested
        [`j-gone`, p2, 'installed', 4, null], // uninstalled at 4…
      ]);
      await report('relay-x', [[`j-one`, p2, 'installed', 3, null]]); // …so this earlier install, told late, is past
      await report('relay-y', [[`j-two`, p1, 'installed', 9, null]]); // not relay-y's target: nothing changes
      const view = async () => {
        const f = await fleetView(store.db, store.scan, { limit: 100, offset: 0 });
        return f.devices
          .filter((d) => d.kind === 'endpoint')
          .map(
            (d) => `${d.id} ${JSON.stringify(d.installed)} ${d.packages.map((p) => p.state)} ${d.health} ${d.lastSeen}`,
          )
          .concat(f.versions.map((v) => `${v.package}: ${v.devices}`));
      };
      expect(await view()).toEqual([
        `${p1} {"app":"1.0.0"} attested ok ${at(2)}`,
        `${p2} {}  unknown ${at(4)}`, // nothing runs there (no packages), heard of last at 4
        'app@1.0.0: 1',
      ]);
      // (save uses only the database; the registry is for asking relays)
      await new DeviceVerification(store.db, undefined as never).save('relay-x', [
        { deviceId: p1, package: 'app', version: '1.0.0', state: 'drift', at: at(5) },
      ]);
      const drifted = await view();
      expect(drifted[0]).toBe(`${p1} {"app":"1.0.0"} drift attention ${at(5)}`);
      const f = await fleetView(store.db, store.scan, { limit: 100, offset: 0, search: 'APP@1.0' });
      expect([f.total, f.sites]).toEqual([
        1,
        [{ location: 'LOC-0', name: 'Store 0042, Dallas, TX', devices: 1, attention: 1 }],
      ]);
      expect(
        (await fleetView(store.db, store.scan, { limit: 100, offset: 0, package: 'app' })).devices.map((d) => d.id),
      ).toEqual([p1]);
      const none = await fleetView(store.db, store.scan, { limit: 100, offset: 0, search: 'no-such-device' });
      expect([none.total, none.devices, none.sites, none.versions]).toEqual([0, [], [], []]);
      // The migration's rebuild from every target and verification gives the same view.
      await store.db.deleteFrom('device_packages').execute();
      await store.db.deleteFrom('device_seen').execute();
      await rebuildDevicePackages(store.db);
      expect(await view()).toEqual(drifted);
      for (const t of ['verifications', 'device_packages', 'device_seen', 'targets', 'jobs'] as const)
        await store.db.deleteFrom(t).execute();
    });

    it('counts whole tables for the gauges off the event loop (SQLite) or in the server (PostgreSQL)', async () => {
      const many = backend.name === 'sqlite' ? 300_000 : 3;
      const numbers =
        backend.name === 'sqlite'
          ? `with recursive n(i) as (select 1 union all select i + 1 from n where i < ${many}) select i from n`
          : `select generate_series(1, ${many}) as i`;
      await sql
        .raw(
          `insert into alerts (source, alert_id, received_at, at, raw, format, outcome, steps, counted)
           select 'bench', 'a-' || i, 't', 't', '${'x'.repeat(500)}', 'json',
             case when i % 3 = 0 then 'ticket' else 'below_threshold' end, '[]', 1 from (${numbers}) as n`,
        )
        .execute(store.db);
      let turns = 0;
      const turning = setInterval(() => turns++, 0);
      const rows = await store.scan<{ k: string; n: number }>(
        'select "outcome" as k, count(*) as n from "alerts" group by "outcome" order by 1',
      );
      clearInterval(turning);
      expect(rows.map((r) => [r.k, Number(r.n)])).toEqual([
        ['below_threshold', many - Math.floor(many / 3)],
        ['ticket', Math.floor(many / 3)],
      ]);
      // Counting 300,000 rows of half a kilobyte took long enough for timers to fire many times
      // meanwhile: the count ran beside the event loop, not on it.
      if (backend.name === 'sqlite') expect(turns).toBeGreaterThan(5);
      await expect(store.scan('select 1 from nowhere')).rejects.toThrow(/nowhere/);
      await store.db.deleteFrom('alerts').where('source', '=', 'bench').execute();
    });

    it('migrates once: opening again finds the schema current', async () => {
      const again = await openStore(db.url);
      const n = await again.db
        .selectFrom('devices')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .executeTakeFirstOrThrow();
      expect(Number(n.n)).toBe(3);
      await again.close();
    });

    it('reads together exactly what each read gives alone, whatever the text and numbers', async () => {
      // On PostgreSQL the rows travel as JSON (readTogether): quoting, escapes, unicode, JSON-looking
      // text, NULLs, reals and ids must come back as the driver gives them one read at a time.
      const odd = [
        'quote"d \\back\\slash\nnew line\ttab',
        'Zürich – 東京 🚀',
        '{"looks": ["like", "json"]}',
        '',
        `long-${'x'.repeat(20_000)}`,
      ];
      await store.db
        .insertInto('devices')
        .values(
          odd.map((text, i) => ({
            id: `odd-${i}-${text.slice(0, 30)}`,
            kind: 'endpoint',
            location: 'LOC-0',
            relay: i % 2 ? 'relay-x' : null,
            upstream: null,
            labels: text,
            hostname: i % 2 ? null : text,
            token_hash: null,
            fallback_relays: null,
            rate_limit_kbps: [0.1, 123456.79, null, 3, 1e-7][i],
          })),
        )
        .execute();
      const reads = () => ({
        devices: store.db.selectFrom('devices').selectAll().where('id', 'like', 'odd-%').orderBy('id'),
        top: store.db.selectFrom('devices').select((eb) => eb.fn.countAll<number>().as('n')),
        none: store.db.selectFrom('devices').select('id').where('id', '=', 'nobody'),
      });
      const alone = Object.fromEntries(
        await Promise.all(Object.entries(reads()).map(async ([k, q]) => [k, await q.execute()])),
      );
      const together = await readTogether(store.db, reads());
      expect(together.devices).toHaveLength(odd.length);
      expect(together.none).toEqual([]);
      // The driver gives counts as strings on PostgreSQL; the JSON path gives the number.
      expect(Number(together.top[0].n)).toBe(Number(alone.top[0].n));
      expect(together.devices).toEqual(alone.devices);
      expect(together.devices.map((d) => d.labels)).toEqual(odd);
      await store.db.deleteFrom('devices').where('id', 'like', 'odd-%').execute();
    });

    it('undoes a failed transaction whole, whichever statement began it', async () => {
      // On PostgreSQL `begin` travels with a first statement that has no parameters (pg-pool.ts).
      const claims = async () =>
        (await store.db.selectFrom('claims').select('name').where('name', 'like', 'undo-%').execute()).map(
          (c) => c.name,
        );
      const attempt = (begin: 'literal' | 'lock' | 'parameters') =>
        store.db.transaction().execute(async (tx) => {
          if (begin === 'literal')
            await sql.raw(`insert into claims (name, holder, until_at) values ('undo-literal', 'h', 'x')`).execute(tx);
          if (begin === 'lock') await store.exclusive(tx, 'test.undo');
          await tx
            .insertInto('claims')
            .values({ name: `undo-${begin}-2`, holder: 'h', until_at: 'x' })
            .execute();
          throw new Error(`failed after ${begin}`);
        });
      for (const begin of ['literal', 'lock', 'parameters'] as const)
        await expect(attempt(begin)).rejects.toThrow(`failed after ${begin}`);
      // A statement that fails as it begins the transaction, and a transaction that ran nothing.
      await expect(
        store.db.transaction().execute((tx) => sql.raw('select no_such_column from claims').execute(tx)),
      ).rejects.toThrow(/no_such_column/);
      await store.db.transaction().execute(async () => {});
      expect(await claims()).toEqual([]);
      // The connections are in order after all of that: work done commits.
      await store.db.transaction().execute(async (tx) => {
        await store.exclusive(tx, 'test.undo');
        await tx.insertInto('claims').values({ name: 'undo-kept', holder: 'h', until_at: 'x' }).execute();
      });
      expect(await claims()).toEqual(['undo-kept']);
      await store.db.deleteFrom('claims').where('name', '=', 'undo-kept').execute();
    });

    it.runIf(backend.name === 'postgres')(
      'prepares a statement that comes again, and takes a table changed under it in its stride',
      async () => {
        await sql.raw('create table prep_probe (a integer)').execute(store.db);
        await sql.raw('insert into prep_probe values (1)').execute(store.db);
        const probe = (db: typeof store.db) =>
          sql<{ a: number; b?: string }>`select * from prep_probe where a > ${0}`.execute(db);
        const prepared = (db: typeof store.db) =>
          sql<{ n: string }>`select count(*) as n from pg_prepared_statements where statement like ${'%prep_probe%'}`
            .execute(db)
            .then((r) => Number(r.rows[0].n));
        await store.db.connection().execute(async (c) => {
          await probe(c);
          expect(await prepared(c)).toBe(0);
          for (let i = 0; i < 4; i++) expect((await probe(c)).rows).toEqual([{ a: 1 }]);
          expect(await prepared(c)).toBe(1);
          // Another master's migration changes what `select *` gives: PostgreSQL refuses the plan.
          await sql.raw(`alter table prep_probe add column b text default 'x'`).execute(store.db);
          await expect(probe(c)).rejects.toThrow(/cached plan must not change result type/);
        });
        // That connection is gone with its plans; the next ones see the table as it is.
        for (let i = 0; i < 5; i++) expect((await probe(store.db)).rows).toEqual([{ a: 1, b: 'x' }]);
        await sql.raw('drop table prep_probe').execute(store.db);
      },
    );

    it.runIf(backend.name === 'postgres')('prepares nothing with FANOUT_PG_PREPARE=off', async () => {
      process.env.FANOUT_PG_PREPARE = 'off';
      const plain = await openStore(db.url).finally(() => delete process.env.FANOUT_PG_PREPARE);
      try {
        const n = await plain.db.connection().execute(async (c) => {
          for (let i = 0; i < 5; i++) await sql`select ${1}::int + 1 as two`.execute(c);
          return sql<{ n: string }>`select count(*) as n from pg_prepared_statements`.execute(c);
        });
        expect(Number(n.rows[0].n)).toBe(0);
      } finally {
        await plain.close();
      }
    });

    it.runIf(backend.name === 'postgres')(
      'keeps at most 200 prepared statements a connection, dropping the least recently used',
      async () => {
        const named = (db: typeof store.db) =>
          sql<{ name: string; statement: string }>`select name, statement from pg_prepared_statements`
            .execute(db)
            .then((r) => r.rows);
        const backend = (db: typeof store.db) =>
          sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(db).then((r) => r.rows[0].pid);
        const pid = await store.db.connection().execute(async (c) => {
          // 250 different statements, each three times: each is prepared at its third run.
          for (let i = 0; i < 250; i++)
            for (let k = 0; k < 3; k++) {
              const r = await sql<{ n: number }>`select ${sql.raw(String(i))} + ${k}::int as n`.execute(c);
              expect(r.rows[0].n).toBe(i + k);
            }
          return backend(c);
        });
        // The dropped ones go when the connection is next taken, before anything else runs on it.
        await store.db.connection().execute(async (c) => {
          expect(await backend(c)).toBe(pid); // the pool hands out the connection released last
          const left = (await named(c)).filter((p) => /^select \d+ \+/.test(p.statement));
          expect(left.length).toBeLessThanOrEqual(200);
          expect(left.length).toBeGreaterThan(100);
          // The most recent are kept, the first are gone.
          expect(left.some((p) => p.statement.startsWith('select 249 +'))).toBe(true);
          expect(left.some((p) => p.statement.startsWith('select 0 +'))).toBe(false);
        });
      },
    );

    it('refuses a database migrated by a newer version', async () => {
      const other = await backend.open();
      const s1 = await openStore(other.url);
      await s1.db
        .insertInto('kysely_migration' as never)
        .values({ name: '9999_future', timestamp: new Date().toISOString() } as never)
        .execute();
      await s1.close();
      await expect(openStore(other.url)).rejects.toThrow(/schema newer than this Fanout/);
      await other.drop();
    });

    it('rejects an invalid inventory whole, listing every error, and keeps what was there', async () => {
      const bad = await parseInventory(
        'devices:\n  - {id: e1, kind: endpoint, location: NOPE, relay: ghost}\n  - {id: e2, kind: endpoint, location: LOC-0}\n',
      );
      const err = await importInventory(store.db, bad).catch((e) => e);
      expect(err).toBeInstanceOf(FanoutError);
      expect(err.details).toEqual([
        'devices.0 (e1): location "NOPE" is not defined',
        'devices.0 (e1): relay "ghost" is not a relay in the inventory',
        'devices.1 (e2): an endpoint needs "relay"',
      ]);
      expect(await store.db.selectFrom('devices').select('id').where('id', 'in', ['e1', 'e2']).execute()).toEqual([]);
      await expect(parseInventory('devices: [ {id: x')).rejects.toThrow(/not valid YAML/);
    });

    it('counts alerts in the window, does not count a retry twice, and opens one ticket per device and type', async () => {
      const center = new AlertCenter(
        store.db,
        cfg.alerts,
        (id) => `http://master.test/tickets/${id}/resolve?exp=1&key=k`,
      );
      const line = (t: string) => parseTextLine(`${t} relay-x-pos-1 - msg="probe timed out"`, 'test');
      const [a1] = await center.ingest([line('2026-11-24T10:00:00Z')]);
      const [dup] = await center.ingest([line('2026-11-24T10:00:00Z')]);
      expect(dup).toMatchObject({ id: a1.id, duplicate: true });
      expect(a1.outcome).toBe('below_threshold');
      const [a2] = await center.ingest([line('2026-11-24T11:00:00Z')]);
      expect(a2.outcome).toBe('ticket');
      const [a3] = await center.ingest([line('2026-11-24T12:00:00Z')]);
      expect(a3.outcome).toBe('attached_to_open_ticket');
      expect(a3.ticketId).toBe(a2.ticketId);
      // Outside the 24 h window the count starts again.
      const [late] = await center.ingest([
        parseTextLine('2026-11-26T12:00:00Z relay-x-pos-2 - msg="probe timed out"', 'test'),
      ]);
      expect(late.outcome).toBe('below_threshold');
      const outbox = await store.db.selectFrom('outbox').selectAll().where('ticket_id', '=', a2.ticketId!).execute();
      expect(outbox).toHaveLength(1);
      expect(JSON.parse(outbox[0].recipients)).toEqual(['south-ops@example.test']);
      expect(outbox[0].body).toContain(`http://master.test/tickets/${a2.ticketId}/resolve?exp=1&key=k`);
    });

    // Scale-out is PostgreSQL's job; a SQLite file belongs to one master.
    it.runIf(backend.name === 'postgres')(
      'two masters on one database open one ticket for one device and type',
      async () => {
        const other = await openStore(db.url);
        try {
          const a = new AlertCenter(store.db, cfg.alerts, () => 'http://a.test', store.exclusive);
          const b = new AlertCenter(other.db, cfg.alerts, () => 'http://b.test', other.exclusive);
          const alert = (i: number) =>
            parseJsonAlert(
              { deviceId: 'relay-x-pos-2', failureType: 'RACE', message: 'x', alertId: `race-${i}` },
              'test',
            );
          const out = await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 ? a : b).ingest([alert(i)])));
          const ticketIds = new Set(out.flat().map((r) => r.ticketId));
          expect(ticketIds.size).toBe(1);
          expect(out.flat().filter((r) => r.outcome === 'ticket')).toHaveLength(1);
        } finally {
          await other.close();
        }
      },
    );

    it('counts by the alerts own times: late alerts stamped inside the window still reach the threshold', async () => {
      const center = new AlertCenter(store.db, cfg.alerts, () => 'http://master.test');
      const at = (s: number) =>
        parseJsonAlert(
          {
            deviceId: 'relay-x-pos-1',
            failureType: 'ORDER',
            message: 'x',
            at: new Date(Date.UTC(2026, 10, 20, 10, 0, s)).toISOString(),
            alertId: `order-${s}`,
          },
          'test',
        );
      const threshold = parseConfig('alerts: { failureTypes: { ORDER: { threshold: 3 } } }').alerts;
      const c3 = new AlertCenter(store.db, threshold, () => 'http://master.test');
      const [a10] = await c3.ingest([at(10)]);
      const [a12] = await c3.ingest([at(12)]);
      const [a5] = await c3.ingest([at(5)]); // arrives last, stamped first
      const counts = await Promise.all(
        [a10, a12, a5].map(async (x) => (await center.get(x.id)).steps.find((s) => s.step === 'track')?.outcome),
      );
      expect(counts).toEqual(['1', '2', '3']);
      expect(a5.outcome).toBe('ticket');
      // Several at once count 1, 2, 3… with no repeats.
      const burst = await Promise.all(
        Array.from({ length: 5 }, (_, i) =>
          c3.ingest([
            parseJsonAlert(
              {
                deviceId: 'relay-x-pos-2',
                failureType: 'BURST',
                message: 'x',
                at: '2026-11-20T11:00:00.000Z',
                alertId: `burst-${i}`,
              },
              'test',
            ),
          ]),
        ),
      );
      const burstCounts = await Promise.all(
        burst.map(async ([x]) => Number((await center.get(x.id)).steps.find((s) => s.step === 'track')?.outcome)),
      );
      expect(burstCounts.sort()).toEqual([1, 2, 3, 4, 5]);
    });

    it('keeps package content in chunks and serves any byte range of it', async () => {
      const dir = tempDir('blobs');
      const bytes = randomBytes(2500);
      const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
      const read = async (src: BlobSource, start: number, end: number) => {
        const parts: Buffer[] = [];
        for await (const c of src.stream(start, end)) parts.push(c as Buffer);
        return Buffer.concat(parts);
      };
      // Chunks of 1000 bytes: ranges inside one chunk, across two, and to the end.
      for (const blobs of [new DatabaseBlobs(store.db, store.exclusive, dir, 1000), new FolderBlobs(dir)]) {
        expect(await blobs.open(digest)).toBeUndefined();
        writeFileSync(join(dir, 'upload'), bytes);
        await Promise.all([blobs.put(digest, join(dir, 'upload')), blobs.put(digest, join(dir, 'upload'))]).catch(
          // A folder's second rename finds the upload gone: the first filed it.
          (e: NodeJS.ErrnoException) => expect(e.code).toBe('ENOENT'),
        );
        const src = (await blobs.open(digest))!;
        expect(src.size).toBe(2500);
        for (const [a, b] of [
          [0, 2499],
          [10, 20],
          [990, 1010],
          [999, 2000],
          [2499, 2499],
        ])
          expect((await read(src, a, b)).equals(bytes.subarray(a, b + 1))).toBe(true);
        expect(await blobs.open('sha256:../../etc/passwd')).toBeUndefined();
      }
    });

    it('raises RELAY_DOWN once when several masters check at the same moment', async () => {
      const other = await openStore(db.url);
      try {
        const raised: string[] = [];
        const quiet = { info() {}, warn() {}, error() {} } as never;
        const registry = (s: Store) =>
          new RelayRegistry(
            s.db,
            quiet,
            1000,
            async (a) => raised.push(a.alertId),
            () => '',
            undefined,
            s.claim,
          );
        const id = `relay-down-${backend.name}`;
        await registry(store).heartbeat(id);
        const later = Date.now() + 5000;
        await Promise.all([registry(store).check(later), registry(other).check(later), registry(store).check(later)]);
        expect(raised.filter((a) => a.includes(id))).toHaveLength(1);
      } finally {
        await other.close();
      }
    });

    it('writes heartbeats that come together in one go, each relay with its own address', async () => {
      const logged: string[] = [];
      const log = { info: (_: unknown, m: string) => logged.push(m), warn() {}, error() {} } as never;
      const registry = new RelayRegistry(
        store.db,
        log,
        1000,
        async () => {},
        () => '',
        undefined,
        store.claim,
      );
      const [a, b, c] = ['a', 'b', 'c'].map((x) => `relay-hb-${x}-${backend.name}`);
      await registry.heartbeat(a, 'https://a.example.test:8443/');
      await store.db
        .updateTable('relays')
        .set({ down_since: '2026-01-01T00:00:00.000Z' })
        .where('id', '=', a)
        .execute();
      const before = (await generationsOf(store.db, ['relay-addresses']))['relay-addresses'];
      // Three at once: a without an address, b with a new one, c with one that is not an http(s) address.
      await Promise.all([
        registry.heartbeat(a),
        registry.heartbeat(b, 'https://b.example.test/'),
        registry.heartbeat(c, 'javascript:alert(1)'),
      ]);
      const rows = await store.db
        .selectFrom('relays')
        .select(['id', 'url', 'down_since', 'last_heartbeat'])
        .where('id', 'in', [a, b, c])
        .orderBy('id')
        .execute();
      expect(rows.map((r) => [r.id, r.url, r.down_since])).toEqual([
        [a, 'https://a.example.test:8443/', null],
        [b, 'https://b.example.test/', null],
        [c, null, null],
      ]);
      expect(new Set(rows.map((r) => r.last_heartbeat)).size).toBe(1); // one write for the three
      expect((await generationsOf(store.db, ['relay-addresses']))['relay-addresses']).toBe(before + 1);
      expect(logged).toContain('relay is back');
    });

    it('gives periodic work to one process at a time, and to another when the claim runs out', async () => {
      const other = await openStore(db.url);
      try {
        const name = `check ${Math.random()}`;
        const first = await Promise.all([store.claim(name, 300), other.claim(name, 300)]);
        expect(first.filter(Boolean).length).toBe(1);
        const holder = first[0] ? store : other;
        const waiting = first[0] ? other : store;
        expect(await holder.claim(name, 300)).toBe(true); // renewed by its holder
        expect(await waiting.claim(name, 300)).toBe(false);
        await new Promise((r) => setTimeout(r, 350)); // the holder died: its claim runs out
        expect(await waiting.claim(name, 300)).toBe(true);
        expect(await holder.claim(name, 300)).toBe(false);
      } finally {
        await other.close();
      }
    });

    /** Two masters' mailers on this database, sending to one sink; `claimMs` as each holds a claim. */
    const twoMailers = async (test: (a: Mailer, b: Mailer, sink: MailSink) => Promise<void>, claimMs?: number) => {
      const sink = new MailSink();
      const port = await sink.listen();
      const other = await openStore(db.url);
      try {
        const mail = parseConfig(`mail: { smtp: { host: 127.0.0.1, port: ${port} } }`).mail;
        const quiet = { info() {}, warn() {}, error() {} } as never;
        await test(
          new Mailer(store.db, mail, quiet, new Faults(false), true, claimMs),
          new Mailer(other.db, mail, quiet, new Faults(false), true, claimMs),
          sink,
        );
      } finally {
        await other.close();
        await sink.close();
      }
    };
    const queue = async (prefix: string, n: number) => {
      for (let i = 0; i < n; i++) await queueMail(store.db, `t-${prefix}-${i}`, `${prefix} ${i}`);
    };
    /** The subjects the sink received that start with `prefix`. */
    const received = (sink: MailSink, prefix: string) =>
      sink.messages
        .map((m) => m.subject)
        .filter((x) => x.startsWith(prefix))
        .sort();

    /**
     * Two masters on this database, each queuing `event` in its own transactions (`queueOf` its
     * store); `queued` reads the data of the events in the outbox. They are removed after: later
     * tests read this database's outbox as theirs.
     */
    const twoMastersAnnouncing = async (
      event: WebhookEvent,
      test: (other: Store, queueOf: (s: Store) => Announce, queued: () => Promise<any[]>) => Promise<void>,
    ) => {
      const other = await openStore(db.url);
      const hooks = parseConfig(
        `integrations: { webhooks: [{ url: "http://hooks.test/x", secret: a-secret-of-16-chars, events: [${event}] }] }`,
      ).integrations;
      const quiet = { info() {}, warn() {}, error() {} } as never;
      const queued = async () =>
        (await store.db.selectFrom('webhook_outbox').select('body').where('event', '=', event).execute()).map(
          (e) => JSON.parse(e.body).data,
        );
      try {
        await test(other, (s) => new Webhooks(s.db, hooks, quiet).queue, queued);
      } finally {
        await store.db.deleteFrom('webhook_outbox').where('event', '=', event).execute();
        await other.close();
      }
    };

    it.runIf(backend.name === 'postgres')(
      'announces a job complete at a relay once when two masters take the completing report at once',
      () =>
        twoMastersAnnouncing('job.complete', async (other, queueOf, queued) => {
          const master = (s: Store) => {
            const jobs = new Jobs(s.db, undefined as never, () => '');
            jobs.announce = queueOf(s);
            return jobs;
          };
          const [a, b] = [master(store), master(other)];
          const at = new Date().toISOString();
          const ids = [1, 2, 3, 4, 5].map((i) => `j-once-${i}`);
          for (const jobId of ids) {
            await store.db
              .insertInto('jobs')
              .values({ id: jobId, packages: '[]', params: '{}', created_at: at, created_by: 'test' })
              .execute();
            await store.db
              .insertInto('commands')
              .values({
                command_id: `c-${jobId}`,
                job_id: jobId,
                relay_id: 'relay-x',
                kind: 'distribute',
                body: '{}',
                issued_at: at,
              })
              .execute();
            const devices = ['relay-x-pos-1', 'relay-x-pos-2'];
            await store.db
              .insertInto('targets')
              .values(
                devices.map((d) => ({
                  job_id: jobId,
                  device_id: d,
                  relay_id: 'relay-x',
                  state: 'pending',
                  attempt: 0,
                  failure_type: null,
                  error: null,
                  updated_at: at,
                  attestation: null,
                })),
              )
              .execute();
            // The same completing report (a relay's retry overlapping its original) at both masters.
            const report = RelayReport.parse({
              targets: devices.map((deviceId) => ({ jobId, deviceId, state: 'installed', at })),
            });
            await Promise.all([a.applyReport('relay-x', report), b.applyReport('relay-x', report)]);
          }
          const announced = (await queued()).map((d) => d.jobId).filter((j: string) => ids.includes(j));
          expect(announced.sort()).toEqual(ids);
        }),
    );

    it.runIf(backend.name === 'postgres')('two masters on one database send each outbox item once', () =>
      twoMailers(async (a, b, sink) => {
        await queue('claim', 5);
        await Promise.all([a.sendDue(), b.sendDue(), a.sendDue(), b.sendDue()]);
        // (Other tests' ticket mails in this database go out too; each of these goes out once.)
        expect(received(sink, 'claim')).toEqual(['claim 0', 'claim 1', 'claim 2', 'claim 3', 'claim 4']);
      }),
    );

    it.runIf(backend.name === 'postgres')(
      'a slow mail server: two masters still send each item once, and a send is cut off before its claim lapses',
      () =>
        twoMailers(async (a, b, sink) => {
          // Each message takes the server 500 ms; a claim holds 1.5 s. Five in a row outlast a
          // claim taken for all of them at once: B, starting at 1.6 s, would take the last ones
          // while A still meant to send them.
          await queue('slow', 5);
          sink.answerDelayMs = 500;
          const first = a.sendDue();
          await sleep(1600);
          await Promise.all([first, b.sendDue()]);
          expect(received(sink, 'slow')).toEqual(['slow 0', 'slow 1', 'slow 2', 'slow 3', 'slow 4']);

          // A server slower than 80 % of the claim: the send is given up, and tried again later.
          await queue('stuck', 1);
          sink.answerDelayMs = 2000;
          await a.sendDue();
          const row = await store.db
            .selectFrom('outbox')
            .select(['state', 'last_error', 'claimed_until'])
            .where('ticket_id', '=', 't-stuck-0')
            .executeTakeFirstOrThrow();
          expect(row).toEqual({
            state: 'pending',
            last_error: 'the mail server did not answer within 1.2 s',
            claimed_until: null,
          });
        }, 1500),
    );

    it('records failed distributions and resolves them with their tickets when the job is repaired', async () => {
      const center = new AlertCenter(
        store.db,
        cfg.alerts,
        (id) => `http://master.test/tickets/${id}/resolve?exp=1&key=k`,
      );
      // Webhook events go into the outbox in the transaction of what they announce.
      const hooks = parseConfig(
        'integrations: { webhooks: [{ url: "http://hooks.test/f", secret: a-secret-of-16-chars, events: [ticket.opened, ticket.resolved] }] }',
      ).integrations;
      const webhooks = new Webhooks(store.db, hooks, { info() {}, warn() {}, error() {} } as never);
      center.announce = webhooks.queue;
      const announced = async () =>
        (await store.db.selectFrom('webhook_outbox').select('body').orderBy('id').execute()).map((r) => {
          const { event, data } = JSON.parse(r.body);
          return { event, ticket: data.ticket.id, state: data.ticket.state, by: data.by };
        });
      const [a] = await center.ingest([
        parseJsonAlert(
          { deviceId: 'relay-x', jobId: 'j-1', message: 'ENOSPC: no space left on device', alertId: 'r1' },
          'relay-x',
        ),
      ]);
      expect(a.outcome).toBe('ticket');
      await center.ingest([
        parseJsonAlert({ deviceId: 'relay-x', jobId: 'j-1', message: 'ENOSPC again', alertId: 'r2' }, 'relay-x'),
      ]);
      expect(await announced()).toEqual([{ event: 'ticket.opened', ticket: a.ticketId, state: 'open' }]);
      const tickets = new Tickets(store.db);
      const [f] = await tickets.failedList();
      expect(f).toMatchObject({
        relayId: 'relay-x',
        jobId: 'j-1',
        failureType: 'DISK_FULL',
        state: 'open',
        alertCount: 2,
        ticketId: a.ticketId,
      });
      await tickets.markRedistributing('relay-x', 'j-1');
      expect((await tickets.failedList())[0].state).toBe('redistributing');
      // An announcement that cannot be written undoes the change with it: nothing half done.
      tickets.announce = async () => {
        throw new Error('disk full');
      };
      await expect(tickets.resolveJob('relay-x', 'j-1', 'the repair')).rejects.toThrow(/disk full/);
      expect((await tickets.failedList())[0].state).toBe('redistributing');
      expect((await tickets.list()).find((t) => t.id === a.ticketId)?.state).toBe('open');
      tickets.announce = webhooks.queue;
      expect(await tickets.resolveJob('relay-x', 'j-1', 'the repair')).toBe(true);
      expect((await tickets.failedList())[0].state).toBe('resolved');
      expect((await tickets.list()).find((t) => t.id === a.ticketId)?.state).toBe('resolved');
      // Once: resolving it again, by hand, announces nothing more.
      await tickets.setState(a.ticketId!, 'resolved', 'otto');
      expect((await announced()).slice(1)).toEqual([
        { event: 'ticket.resolved', ticket: a.ticketId, state: 'resolved', by: 'the repair' },
      ]);
    });

    it.runIf(backend.name === 'postgres')(
      "announces a repaired job's ticket resolved once when two masters resolve it at once",
      () =>
        twoMastersAnnouncing('ticket.resolved', async (other, queueOf, queued) => {
          const master = (s: Store) => {
            const tickets = new Tickets(s.db);
            tickets.announce = queueOf(s);
            return tickets;
          };
          const center = new AlertCenter(store.db, cfg.alerts, () => '');
          const opened: string[] = [];
          for (const i of [1, 2, 3, 4, 5]) {
            const alert = { deviceId: 'relay-x', jobId: `j-twice-${i}`, message: 'ENOSPC', alertId: `twice-${i}` };
            const [a] = await center.ingest([parseJsonAlert(alert, 'relay-x')]);
            expect(a.outcome).toBe('ticket');
            opened.push(a.ticketId!);
            const [x, y] = [master(store), master(other)];
            const both = await Promise.all([
              x.resolveJob('relay-x', `j-twice-${i}`, 'the repair'),
              y.resolveJob('relay-x', `j-twice-${i}`, 'the repair'),
            ]);
            expect(both).toContain(true);
          }
          const resolved = (await queued()).map((d) => d.ticket.id).filter((t: string) => opened.includes(t));
          expect(resolved.sort()).toEqual([...opened].sort());
        }),
    );

    /** A database of its own, brought up to `last` only: a Fanout from before the migrations after it. */
    const migratedTo = async (last: string) => {
      const older = await backend.open();
      const kysely =
        backend.name === 'sqlite'
          ? new Kysely<any>({ dialect: new SqliteDialect({ database: new BetterSqlite3(older.url) }) })
          : new Kysely<any>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: older.url }) }) });
      const provider = { getMigrations: async () => migrations(backend.name as 'sqlite' | 'postgres') };
      expect((await new Migrator({ db: kysely, provider }).migrateTo(last)).error).toBeUndefined();
      return { older, kysely };
    };

    it("names each ring's job with its rollout when a database from before 0019 is brought up to date", async () => {
      const { older, kysely } = await migratedTo('0018_shared_secrets');
      const at = new Date().toISOString();
      for (const id of ['j-ring1', 'j-ring2', 'j-alone'])
        await kysely
          .insertInto('jobs')
          .values({ id, packages: '[]', params: '{}', created_at: at, created_by: 'ann' })
          .execute();
      const ring = (jobId: string | null) => ({ percent: 50, devices: [], jobId, endedAt: null, failureRate: null });
      await kysely
        .insertInto('rollouts')
        .values({
          id: 'j-roll',
          packages: '[]',
          params: '{}',
          rings: JSON.stringify([ring('j-ring1'), ring('j-ring2'), ring(null)]),
          halt_rate: 0,
          ring_wait_ms: 0,
          state: 'running',
          current: 1,
          reason: null,
          created_at: at,
          updated_at: at,
          created_by: 'ann',
        })
        .execute();
      await kysely.destroy();
      const upgraded = await openStore(older.url);
      try {
        const rows = await upgraded.db.selectFrom('jobs').select(['id', 'rollout_id']).orderBy('id').execute();
        expect(rows).toEqual([
          { id: 'j-alone', rollout_id: null },
          { id: 'j-ring1', rollout_id: 'j-roll' },
          { id: 'j-ring2', rollout_id: 'j-roll' },
        ]);
        const views = await jobList(upgraded.db, { limit: 10, offset: 0 }, true);
        expect(Object.fromEntries(views.map((v) => [v.jobId, v.ringOf]))).toEqual({
          'j-alone': null,
          'j-ring1': { rollout: 'j-roll', ring: 1, of: 3 },
          'j-ring2': { rollout: 'j-roll', ring: 2, of: 3 },
        });
      } finally {
        await upgraded.close();
        await older.drop();
      }
    });

    it('records the jobs already complete at each relay as announced when a database from before 0020 is brought up to date', async () => {
      const { older, kysely } = await migratedTo('0019_job_rollouts');
      const target = (job_id: string, relay_id: string, device_id: string, state: string, minute: number) => ({
        job_id,
        device_id,
        relay_id,
        state,
        attempt: 1,
        updated_at: new Date(Date.UTC(2026, 0, 1, 0, minute)).toISOString(),
      });
      await kysely
        .insertInto('targets')
        .values([
          target('j-a', 'relay-1', 'd-1', 'installed', 1),
          target('j-a', 'relay-1', 'd-2', 'installed', 7),
          target('j-a', 'relay-2', 'd-3', 'installed', 2),
          target('j-a', 'relay-2', 'd-4', 'failed', 3),
          target('j-b', 'relay-1', 'd-1', 'pending', 4),
        ])
        .execute();
      await kysely.destroy();
      const upgraded = await openStore(older.url);
      try {
        expect(await upgraded.db.selectFrom('job_completions').selectAll().execute()).toEqual([
          { job_id: 'j-a', relay_id: 'relay-1', at: '2026-01-01T00:07:00.000Z' },
        ]);
      } finally {
        await upgraded.close();
        await older.drop();
      }
    });
  });
}

describe('a database that cannot be used', () => {
  it('is named in the error, its password hidden, and not taken for a failed migration', async () => {
    const pg = openStore('postgres://fanout:s3cret@127.0.0.1:1/nowhere');
    await expect(pg).rejects.toThrow(/^cannot use the database postgres:\/\/fanout:\*\*\*@127\.0\.0\.1:1\/nowhere: /);
    await expect(pg).rejects.not.toThrow(/s3cret|migration/);
    const file = join(tempDir('store'), 'missing', 'm.db');
    await expect(openStore(file)).rejects.toThrow(`cannot use the database ${file}: `);
  });
});
