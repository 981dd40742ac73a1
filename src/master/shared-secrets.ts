// The HMAC keys of what the master hands out for later: ticket mails' resolve links (good for days)
// and the dashboard's event tickets. Kept in the database, so every master on it shares them and a
// key rotation, or a restart after one, leaves them alone. Each is made once, by the first master to
// start, from what versions before it derived from the signing key in force: links already mailed
// keep working through the upgrade.
import { createHash } from 'node:crypto';
import type { Db } from '../store/index.ts';

export type SharedSecretName = 'ticket links' | 'event tickets';

export async function sharedSecret(db: Db, name: SharedSecretName, signingKeyPem: string): Promise<Buffer> {
  const seed = createHash('sha256').update(`fanout ${name}\n${signingKeyPem}`).digest();
  await db
    .insertInto('shared_secrets')
    .values({ name, value: seed.toString('base64') })
    .onConflict((oc) => oc.column('name').doNothing())
    .execute();
  const row = await db.selectFrom('shared_secrets').select('value').where('name', '=', name).executeTakeFirstOrThrow();
  return Buffer.from(row.value, 'base64');
}
