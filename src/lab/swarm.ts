// `fanout swarm` (DESIGN §16): N simulated endpoints in one process speaking the real agent protocol
// over HTTP(S): each long-polls its relay, checks the master's signature and its place on the signed
// list, downloads the content, checks digest and signature, reports every step — and keeps nothing
// (the content is hashed and discarded). A capacity tool: one machine puts thousands of endpoints on
// a relay and measures how soon each hears of its work.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { checkedWithReread } from '../common/pinned-key.ts';
import { checkAssignment } from '../protocol/assignment.ts';
import { Client, type ClientTls } from '../protocol/client.ts';
import { verifyPackage } from '../protocol/crypto.ts';
import { type Rotation, trustedKeys } from '../protocol/keys.ts';
import type { Assignment } from '../protocol/types.ts';
import { SwarmLink } from './swarm-link.ts';

export interface SwarmResult {
  endpoints: number;
  installed: number;
  failed: number;
  /** From the signed command's issue to the endpoint holding its assignment. */
  p50Ms: number;
  p99Ms: number;
  bytes: number;
  /** Why endpoints failed, with how many: the five most common reasons. */
  failures: Record<string, number>;
}

/** Device tokens: the JSON `inventory import --json` prints, or lines of `ID TOKEN`. */
export function readTokens(file: string): { id: string; token: string }[] {
  const text = readFileSync(file, 'utf8');
  if (text.trimStart().startsWith('{'))
    return (JSON.parse(text).devices as { id: string; kind: string; token: string | null }[])
      .filter((d) => d.kind === 'endpoint' && d.token)
      .map((d) => ({ id: d.id, token: d.token! }));
  return text
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter((p) => p.length === 2)
    .map(([id, token]) => ({ id, token }));
}

/** How long no assignment may have arrived before the endpoints that hold one start their work. */
const QUIET_MS = 20;

const percentile = (xs: number[], p: number) =>
  xs.length ? [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))] : 0;

export async function runSwarm(o: {
  relay: string;
  endpoints: { id: string; token: string }[];
  tls?: ClientTls;
  /** Stop once every endpoint has been idle this long after some work (0: until the signal). */
  idleMs: number;
  signal: AbortSignal;
  onProgress?: (r: SwarmResult) => void;
}): Promise<SwarmResult> {
  // Ends with the caller's signal, or once idle: every long-poll is cut then.
  const all = new AbortController();
  o.signal.addEventListener('abort', () => all.abort());
  const signal = all.signal;
  const latencies: number[] = [];
  const result: SwarmResult = {
    endpoints: o.endpoints.length,
    installed: 0,
    failed: 0,
    p50Ms: 0,
    p99Ms: 0,
    bytes: 0,
    failures: {},
  };
  const why = new Map<string, number>();
  // When an assignment last arrived, and one wait shared by every endpoint until none has for QUIET_MS
  // (at most 5 s: answers that never stop coming do not hold the work for ever).
  let lastAnswer = 0;
  let quiet: Promise<void> | undefined;
  const answersRead = () =>
    (quiet ??= (async () => {
      const until = Date.now() + 5000;
      do await sleep(QUIET_MS);
      while (Date.now() - lastAnswer < QUIET_MS && Date.now() < until);
      quiet = undefined;
    })());
  let lastWork = 0;
  // Endpoints between receiving an assignment and reporting its end: not idle, however long it takes.
  let busy = 0;
  const first = new Client({ baseUrl: o.relay, token: o.endpoints[0]?.token ?? '', tls: o.tls });
  const enrollment = () => first.get<{ publicKey: string; rotations?: Rotation[] }>('agent/v1/enroll');
  const { publicKey: pinned } = await enrollment();
  let keys = [pinned];
  // After a key rotation the relay offers the new key with its rotations: read once for all the
  // endpoints that ask at the same time; a key the pinned one did not vouch for is not taken.
  let rereading: Promise<void> | undefined;
  const reread = () =>
    (rereading ??= enrollment()
      .then((e) => void (keys = trustedKeys(pinned, e.publicKey, e.rotations ?? [])))
      .catch(() => undefined)
      .finally(() => (rereading = undefined)));
  // One process plays thousands of endpoints: each distinct signed header and package is verified once.
  const verifiedHeaders = new Set<string>();
  const verifiedPackages = new Set<string>();

  const endpoint = async ({ id, token }: { id: string; token: string }) => {
    // Each endpoint on its own kept-alive connection, as a real one would.
    const link = new SwarmLink(o.relay, token, o.tls);
    signal.addEventListener('abort', () => link.close(), { once: true });
    const done = new Set<string>();
    const report = (a: Assignment, state: string, extra: object = {}) =>
      link.json('POST', 'agent/v1/reports', {
        jobId: a.jobId,
        commandId: a.commandId,
        attempt: a.attempt,
        state,
        ...extra,
      });
    while (!signal.aborted) {
      let list: Assignment[] = [];
      try {
        list = (
          await link.json<{ assignments: Assignment[] }>('GET', 'agent/v1/assignments?wait=20', undefined, {
            silenceMs: 30_000,
          })
        ).assignments;
      } catch {
        if (!signal.aborted) await sleep(1000, undefined, { signal }).catch(() => undefined);
        continue;
      }
      const fresh = list.filter((a) => !done.has(a.assignmentId));
      for (const a of fresh) {
        done.add(a.assignmentId);
        latencies.push(Date.now() - Date.parse(a.authority.header.issuedAt));
        lastWork = Date.now();
        busy++;
      }
      // A real endpoint has a CPU of its own: this one's work waits until the answers still arriving for
      // the others are read, or one process playing thousands would time its own queue.
      if (fresh.length) {
        lastAnswer = Date.now();
        await answersRead();
      }
      for (const a of fresh) {
        const check = await checkedWithReread(
          () => keys,
          (k) => checkAssignment(a, id, k, Date.now(), verifiedHeaders),
          (c) => !c.ok && c.failureType === 'SIGNATURE_INVALID',
          reread,
        );
        try {
          if (!check.ok) throw new Error(check.reason);
          await report(a, 'downloading');
          const trees: Record<string, string> = {};
          for (const p of a.packages) {
            const h = createHash('sha256');
            await link.get(
              `content/${p.digest}`,
              (bytes) => {
                h.update(bytes);
                result.bytes += bytes.length;
              },
              { silenceMs: 60_000 },
            );
            if (`sha256:${h.digest('hex')}` !== p.digest) throw new Error(`${p.name}: digest mismatch`);
            const pkgKey = JSON.stringify(p);
            if (!verifiedPackages.has(pkgKey)) {
              if (!verifyPackage(keys, p, p.signature)) throw new Error(`${p.name}: signature does not verify`);
              verifiedPackages.add(pkgKey);
            }
            if (p.tree) trees[`${p.name}@${p.version}`] = p.tree; // simulated: nothing is on a disk
          }
          await report(a, 'installed', { trees });
          result.installed++;
        } catch (e) {
          result.failed++;
          const reason = (e as Error).message.slice(0, 200);
          why.set(reason, (why.get(reason) ?? 0) + 1);
          await report(a, 'failed', { failureType: 'INSTALL_FAILED', error: `swarm: ${(e as Error).message}` }).catch(
            () => undefined,
          );
        }
        busy--;
        lastWork = Date.now();
      }
    }
  };

  const workers = o.endpoints.map((e) => endpoint(e));
  while (!signal.aborted) {
    await sleep(500, undefined, { signal }).catch(() => undefined);
    o.onProgress?.({ ...result, p50Ms: percentile(latencies, 50), p99Ms: percentile(latencies, 99) });
    if (o.idleMs && lastWork && !busy && Date.now() - lastWork > o.idleMs) all.abort();
  }
  await Promise.allSettled(workers);
  const failures = Object.fromEntries([...why].sort((a, b) => b[1] - a[1]).slice(0, 5));
  return { ...result, failures, p50Ms: percentile(latencies, 50), p99Ms: percentile(latencies, 99) };
}
