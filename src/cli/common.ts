// Shared pieces of the command line: master connection options, output, errors.
import { readFileSync } from 'node:fs';
import { type Command, Option } from 'commander';
import { Client, HttpError } from '../protocol/client.ts';

export interface MasterFlags {
  master: string;
  token?: string;
  tokenFile?: string;
  json?: boolean;
}

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
  return cmd
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

export function masterClient(f: MasterFlags) {
  const token = tokenFrom(f);
  if (!token)
    throw new CliError(
      "no token: pass --token-file FILE (the admin token is in the master's DATA/admin.token) or set FANOUT_TOKEN_FILE",
    );
  return new Client({ baseUrl: f.master, token });
}

export class CliError extends Error {}

export function print(json: boolean | undefined, data: unknown, human: () => string) {
  process.stdout.write((json ? JSON.stringify(data, null, 2) : human()) + '\n');
}

export function table(rows: Record<string, unknown>[], cols: string[]): string {
  if (!rows.length) return '(none)';
  const cell = (v: unknown) =>
    v === null || v === undefined ? '-' : typeof v === 'object' ? JSON.stringify(v) : String(v);
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
      if (e instanceof HttpError) {
        process.stderr.write(`fanout: ${e.message}${e.code && !e.code.startsWith('HTTP_') ? ` [${e.code}]` : ''}\n`);
        if (Array.isArray(e.details) && !e.message.includes(String(e.details[0])))
          for (const d of e.details) process.stderr.write(`  ${d}\n`);
      } else process.stderr.write(`fanout: ${(e as Error).message}\n`);
      process.exitCode = e instanceof HttpError && e.status === 0 ? 3 : 1;
    }
  };
}
