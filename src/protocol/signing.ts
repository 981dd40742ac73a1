// What the master signs (DESIGN §12): a command's header as canonical JSON (keys sorted, the
// signature left out), with its distribution list as the root of a SHA-256 Merkle tree over the
// sorted device ids. An agent gets the header and the proof that its device is in the list.
import { createPrivateKey, createPublicKey, hash, sign, verify } from 'node:crypto';

/** JSON with object keys sorted at every level and no spaces: the bytes that are signed. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map((x) => canonicalJson(x ?? null)).join(',')}]`;
  if (v && typeof v === 'object') {
    const entries = Object.entries(v as Record<string, unknown>)
      .filter(([, x]) => x !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${canonicalJson(x)}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

// One-shot hashing: a list of 10,000 devices is 20,000 small hashes, a proof about fourteen.
const h = (...parts: Buffer[]) => hash('sha256', Buffer.concat(parts), 'buffer') as unknown as Buffer;
// Leaves and inner nodes are hashed apart (0x00, 0x01) so a node can never pass for a leaf.
const leaf = (id: string) => h(Buffer.from([0]), Buffer.from(id, 'utf8'));
const node = (a: Buffer, b: Buffer) =>
  Buffer.compare(a, b) <= 0 ? h(Buffer.from([1]), a, b) : h(Buffer.from([1]), b, a);

function levels(sorted: readonly string[]): Buffer[][] {
  const out: Buffer[][] = [sorted.map(leaf)];
  while (out.at(-1)!.length > 1) {
    const below = out.at(-1)!;
    const up: Buffer[] = [];
    for (let i = 0; i < below.length; i += 2) up.push(i + 1 < below.length ? node(below[i], below[i + 1]) : below[i]);
    out.push(up);
  }
  return out;
}

// Lists are never changed once parsed, so a list's tree is kept for as long as the list is.
const built = new WeakMap<readonly string[], ListTree>();

/** A Merkle tree over a distribution list: its root, and each device's proof (log2 n hashes). */
export class ListTree {
  private readonly tree: Buffer[][];
  private readonly index: Map<string, number>;
  constructor(ids: readonly string[]) {
    const sorted = [...new Set(ids)].sort();
    this.tree = levels(sorted);
    this.index = new Map(sorted.map((id, i) => [id, i]));
  }
  /** The tree of a list already built (the relay verifies a command's list, then proves from it). */
  static of(ids: readonly string[]): ListTree {
    let t = built.get(ids);
    if (!t) built.set(ids, (t = new ListTree(ids)));
    return t;
  }
  get root(): string {
    return (this.tree.at(-1)?.[0] ?? h()).toString('hex');
  }
  get size() {
    return this.index.size;
  }
  proof(id: string): string[] | undefined {
    let i = this.index.get(id);
    if (i === undefined) return undefined;
    const out: string[] = [];
    for (const level of this.tree.slice(0, -1)) {
      const sibling = i % 2 ? i - 1 : i + 1;
      if (sibling < level.length) out.push(level[sibling].toString('hex'));
      i = Math.floor(i / 2);
    }
    return out;
  }
}

export const listRoot = (ids: readonly string[]) => new ListTree(ids).root;

/** Whether `id` is in the list whose root is `root`, by its proof. */
export function inList(root: string, id: string, proof: readonly string[]): boolean {
  let x = leaf(id);
  for (const s of proof) {
    if (!/^[0-9a-f]{64}$/.test(s)) return false;
    x = node(x, Buffer.from(s, 'hex'));
  }
  return x.toString('hex') === root;
}

export const signCanonical = (privatePem: string, value: unknown) =>
  sign(null, Buffer.from(canonicalJson(value)), createPrivateKey(privatePem)).toString('base64');

/** True when any of the keys signed the value. */
export const verifyCanonical = (publicPems: readonly string[], value: unknown, signature: string) =>
  signedByAny(publicPems, Buffer.from(canonicalJson(value)), signature);

/** True when any of the keys signed the message (a device trusts several of the master's after rotations). */
export function signedByAny(publicPems: readonly string[], msg: Buffer, signature: string): boolean {
  const sig = Buffer.from(signature, 'base64');
  return publicPems.some((pem) => {
    try {
      return verify(null, msg, createPublicKey(pem), sig);
    } catch {
      return false;
    }
  });
}
