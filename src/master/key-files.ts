// What a master keeps of its key beside it: the key pair, and the copy of the rotations that lead to it.
import { existsSync, readFileSync } from 'node:fs';
import { replaceFile } from '../common/files.ts';
import { fingerprint, type Rotation } from '../protocol/keys.ts';

export interface KeyPair {
  privatePem: string;
  publicPem: string;
  /** The public keys this key replaced, oldest first (kept with the key since rotations write them). */
  retired?: string[];
}

export const rotationsFileOf = (keyFile: string) => `${keyFile}.rotations.json`;

export function parsePair(text: string, file: string): KeyPair {
  try {
    const p = JSON.parse(text) as KeyPair;
    if (typeof p.privatePem === 'string' && typeof p.publicPem === 'string')
      return { ...p, retired: Array.isArray(p.retired) ? p.retired.filter((k) => typeof k === 'string') : [] };
  } catch {}
  throw new Error(`${file} is not a Fanout signing key (JSON with privatePem and publicPem)`);
}

function readChain(file: string): Rotation[] {
  if (!existsSync(file)) return [];
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`${file} is not a list of key rotations: ${(e as Error).message}`);
  }
}

/**
 * The rotations kept beside the key. One kept without its key (a rotation cut short by a version
 * before this one) is dropped: nobody holds that key, and a rotation after it would not chain.
 */
export async function keptChain(keyFile: string, pair: KeyPair, notices: string[]) {
  const file = rotationsFileOf(keyFile);
  const chain = readChain(file);
  const cut = chain.findIndex((r) => r.statement.previous === fingerprint(pair.publicPem));
  if (cut < 0 || chain.at(-1)?.statement.next === pair.publicPem) return chain;
  notices.push(`dropped ${chain.length - cut} rotation(s) to a key that was never kept`);
  await replaceFile(file, JSON.stringify(chain.slice(0, cut), null, 2), 0o600);
  return chain.slice(0, cut);
}
