// Shared pieces of the command line: master connection options, output, errors.
import { readFileSync } from 'node:fs';
import { type Command, Option } from 'commander';
import { cellSafe, jsonSafe, terminalSafe } from '../common/terminal.ts';
import { clientTls } from '../common/tls.ts';
import { Client, HttpError } from '../protocol/client.ts';

export interface ClientTlsFlags {
  ca?: string;
  clientCert?: string;
  clientKey?: string;
}
export interface MasterFlags extends ClientTlsFlags {
  master: string;
  token?: string;
  tokenFile?: string;
  json?: boolean;
}

/** How a client checks the server (and, for mutual TLS, shows its own certificate). */
export function withClientTls(cmd: Command) {
  return cmd
    .addOption(
      new Option('--ca <file>', 'the CA certificate (PEM) that signed the server certificates').env('FANOUT_CA'),
    )
    .addOption(
      new Option('--client-cert <file>', "this client's certificate, for servers that require one").env(
        'FANOUT_CLIENT_CERT',
      ),
    )
    .addOption(new Option('--client-key <file>', 'the key of --client-cert').env('FANOUT_CLIENT_KEY'));
}

/** A daemon's own TLS (DESIGN §12). */
export function withServerTls(cmd: Command) {
  return cmd
    .option('--tls-cert <file>', 'serve HTTPS with this certificate (PEM)')
    .option('--tls-key <file>', 'the key of --tls-cert')
    .option('--tls-client-ca <file>', 'require client certificates signed by this CA (mutual TLS)')
    .option('--advertise <url>', 'the URL others should use to reach this daemon (default: the address it listens on)');
}

export const tlsOptions = (
  o: ClientTlsFlags & { tlsCert?: string; tlsKey?: string; tlsClientCa?: string; advertise?: string },
) => ({
  tls: { cert: o.tlsCert, key: o.tlsKey, clientCa: o.tlsClientCa },
  clientTls: { ca: o.ca, clientCert: o.clientCert, clientKey: o.clientKey },
  advertise: o.advertise,
});

/** A token from --token-file (kept off the command line, where `ps` shows it) or --token. */
export function tokenFrom(o: { token?: string; tokenFile?: string }): string | undefined {
  if (o.tokenFile) {
    try {
      return readFileSync(o.tokenFile, 'utf8').trim();
    } catch (e) {
      throw new CliError(`cannot read --token-file ${o.tokenFile}: ${(e as Error).message}`);
    }
  }
  return o.token;
}

export function withMaster(cmd: Command) {
  return withClientTls(cmd)
    .addOption(new Option('--master <url>', 'master URL').env('FANOUT_MASTER').default('http://127.0.0.1:8470'))
    .addOption(
      new Option('--token-file <file>', "a file holding the token, e.g. the master's DATA/admin.token").env(
        'FANOUT_TOKEN_FILE',
      ),
    )
    .addOption(
      new Option('--token <token>', 'the token itself (prefer --token-file: argv shows in `ps`)').env('FANOUT_TOKEN'),
    )
    .option('--json', 'print machine-readable JSON');
}

/** A paged list's flags: every list is newest first, `--limit` from `--offset`. */
export function withPaging(cmd: Command, limit = '200') {
  return cmd
    .option('--limit <n>', 'how many (at most 5000)', limit)
    .option('--offset <n>', 'skip this many of the newest first', '0');
}

/** A list's URL: the paging flags and whichever of `filters` were given, as its query. */
export function listUrl(path: string, o: object, filters: string[] = []) {
  const given = o as Record<string, unknown>;
  const q = new URLSearchParams();
  for (const k of ['limit', 'offset', ...filters]) if (given[k] !== undefined) q.set(k, String(given[k]));
  return `${path}?${q}`;
}

export function masterClient(f: MasterFlags) {
  const token = tokenFrom(f);
  if (!token)
    throw new CliError(
      "no token: pass --token-file FILE (the admin token is in the master's DATA/admin.token) or set FANOUT_TOKEN_FILE",
    );
  return new Client({
    baseUrl: f.master,
    token,
    tls: clientTls({ ca: f.ca, clientCert: f.clientCert, clientKey: f.clientKey }),
  });
}

export class CliError extends Error {}

/** Data as JSON (`--json`) or as text for people; either way, nothing in it a terminal would obey. */
export function print(json: boolean | undefined, data: unknown, human: () => string) {
  if (json) printJson(data);
  else process.stdout.write(`${terminalSafe(human())}\n`);
}

/** Data as JSON on stdout, with nothing in it a terminal would obey (a JSON reader gets the same). */
export function printJson(data: unknown) {
  process.stdout.write(`${jsonSafe(JSON.stringify(data, null, 2))}\n`);
}

export function table(rows: Record<string, unknown>[], cols: string[]): string {
  if (!rows.length) return '(none)';
  const cell = (v: unknown) =>
    v === null || v === undefined ? '-' : cellSafe(typeof v === 'object' ? JSON.stringify(v) : String(v));
  const widths = cols.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const line = (vals: string[]) =>
    vals
      .map((v, i) => v.padEnd(widths[i]))
      .join('  ')
      .trimEnd();
  return [line(cols.map((c) => c.toUpperCase())), ...rows.map((r) => line(cols.map((c) => cell(r[c]))))].join('\n');
}

export function collect(v: string, prev: string[] = []) {
  return [...prev, v];
}

export function keyValues(list: string[] = [], what: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of list) {
    const i = kv.indexOf('=');
    if (i <= 0) throw new CliError(`${what} "${kv}" must look like key=value`);
    out[kv.slice(0, i)] = kv.slice(i + 1);
  }
  return out;
}

/** Runs an action; errors go to stderr with a non-zero exit. */
export function action<A extends unknown[]>(fn: (...args: A) => Promise<void | number>) {
  return async (...args: A) => {
    try {
      const code = await fn(...args);
      if (typeof code === 'number') process.exitCode = code;
    } catch (e) {
      // A server's or relay's words are the network's: shown, never obeyed.
      const say = (line: string) => process.stderr.write(`${terminalSafe(line)}\n`);
      if (e instanceof HttpError) {
        say(`fanout: ${e.message}${e.code && !e.code.startsWith('HTTP_') ? ` [${e.code}]` : ''}`);
        if (Array.isArray(e.details) && !e.message.includes(String(e.details[0])))
          for (const d of e.details) say(`  ${d}`);
      } else say(`fanout: ${(e as Error).message}`);
      process.exitCode = e instanceof HttpError && e.status === 0 ? 3 : 1;
    }
  };
}

const SIZE_UNITS: Record<string, number> = {
  '': 1,
  B: 1,
  KB: 1e3,
  MB: 1e6,
  GB: 1e9,
  TB: 1e12,
  KIB: 1024,
  MIB: 1024 ** 2,
  GIB: 1024 ** 3,
};

/** "500MB", "20GB", "1GiB" or a plain number of bytes. */
export function parseSize(text: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(text.trim());
  const unit = m ? SIZE_UNITS[m[2].toUpperCase()] : undefined;
  if (!m || unit === undefined || !(Number(m[1]) > 0))
    throw new CliError(`${flag} must be a size like 500MB, 20GB or a number of bytes, not "${text}"`);
  return Math.floor(Number(m[1]) * unit);
}
