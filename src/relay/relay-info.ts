// DATA/relay.json: where the relay listens and runs, and how it reaches its master (its addresses and
// client TLS files, as absolute paths), with its master token in DATA/master.token (0600). Written at
// each start; the redistribution tool on the relay's host reads them, to reach the relay, or its
// master while the relay is down.
import { existsSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { replaceFile } from '../common/files.ts';
import type { ClientTlsFiles } from '../common/tls.ts';

export interface RelayInfo {
  id: string;
  url: string;
  pid: number;
  master?: string[];
  tls?: ClientTlsFiles;
}

export const MASTER_TOKEN_FILE = 'master.token';

export async function writeRelayInfo(
  data: string,
  info: Omit<RelayInfo, 'tls'>,
  opts: { token: string; clientTls?: ClientTlsFiles },
) {
  const tls = Object.fromEntries(
    Object.entries(opts.clientTls ?? {}).flatMap(([k, v]) => (v ? [[k, resolve(v)]] : [])),
  );
  const tokenFile = join(data, MASTER_TOKEN_FILE);
  if (!existsSync(tokenFile) || readFileSync(tokenFile, 'utf8') !== `${opts.token}\n`)
    await replaceFile(tokenFile, `${opts.token}\n`, 0o600);
  await writeFile(join(data, 'relay.json'), `${JSON.stringify({ ...info, tls })}\n`);
}

export function relayInfo(data: string): RelayInfo | undefined {
  const f = join(data, 'relay.json');
  return existsSync(f) ? JSON.parse(readFileSync(f, 'utf8')) : undefined;
}
