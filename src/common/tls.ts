// TLS as the command line gives it: a daemon's certificate (--tls-cert/--tls-key, and
// --tls-client-ca to require client certificates), a client's CA (--ca) and certificate.
import { readFileSync } from 'node:fs';
import type { ClientTls } from '../protocol/client.ts';

export interface ServerTlsFiles {
  cert?: string;
  key?: string;
  /** Only clients with a certificate this CA signed may connect (mutual TLS). */
  clientCa?: string;
}

const read = (file: string, what: string) => {
  try {
    return readFileSync(file);
  } catch (e) {
    throw new Error(`cannot read ${what} ${file}: ${(e as Error).message}`);
  }
};

export function serverTls(f: ServerTlsFiles) {
  if (!f.cert && !f.key) {
    if (f.clientCa) throw new Error('--tls-client-ca needs --tls-cert and --tls-key');
    return undefined;
  }
  if (!f.cert || !f.key) throw new Error('give both --tls-cert and --tls-key');
  return {
    cert: read(f.cert, '--tls-cert'),
    key: read(f.key, '--tls-key'),
    ...(f.clientCa ? { ca: read(f.clientCa, '--tls-client-ca'), requestCert: true, rejectUnauthorized: true } : {}),
  };
}

export interface ClientTlsFiles {
  ca?: string;
  clientCert?: string;
  clientKey?: string;
}

export function clientTls(f: ClientTlsFiles): ClientTls | undefined {
  if (!f.ca && !f.clientCert) return undefined;
  if (!!f.clientCert !== !!f.clientKey) throw new Error('give both --client-cert and --client-key');
  return {
    ...(f.ca ? { ca: read(f.ca, '--ca').toString() } : {}),
    ...(f.clientCert
      ? { cert: read(f.clientCert, '--client-cert').toString(), key: read(f.clientKey!, '--client-key').toString() }
      : {}),
  };
}
