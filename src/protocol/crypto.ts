import { createHash, createPrivateKey, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { signedByAny } from './signing.ts';

export const sha256Hex = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');
export const newToken = () => randomBytes(24).toString('base64url');
export const newId = (prefix: string) => `${prefix}-${Date.now().toString(36)}${randomBytes(4).toString('hex')}`;

export interface SignedFields {
  name: string;
  version: string;
  digest: string;
  size: number;
  /** The tree hash of its files (DESIGN §17); packages pushed before trees were signed have none. */
  tree?: string;
}

// The signed message is the canonical JSON of exactly these fields, in this order (tree when present).
const message = (p: SignedFields) =>
  Buffer.from(
    JSON.stringify({
      name: p.name,
      version: p.version,
      digest: p.digest,
      size: p.size,
      ...(p.tree === undefined ? {} : { tree: p.tree }),
    }),
  );

export function generateSigningKey(): { privatePem: string; publicPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return {
    privatePem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}

export const signPackage = (privatePem: string, p: SignedFields) =>
  sign(null, message(p), createPrivateKey(privatePem)).toString('base64');

/** True when any of the keys signed the package. */
export const verifyPackage = (publicPems: readonly string[], p: SignedFields, signature: string) =>
  signedByAny(publicPems, message(p), signature);
