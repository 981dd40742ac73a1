// Fanout daemons as real child processes on loopback: the lab's network, and the tests'.
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { packageRoot } from '../common/package-root.ts';

export const BIN = join(packageRoot(), 'bin', 'fanout.js');

export interface LabProcess {
  name: string;
  child: ChildProcess;
  url: string;
  logFile: string;
  /** Sends the signal (SIGTERM by default) and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  /** SIGKILL: a crash, for tests of what survives one. */
  kill(): Promise<void>;
}

/** A child's environment: ours, less the test runner's own CA trust (children are given --ca, as in deployments). */
export function childEnv(extra: Record<string, string | undefined> = {}) {
  const env = { ...process.env, ...extra };
  delete env.NODE_EXTRA_CA_CERTS;
  return env;
}

export interface SpawnOptions {
  ready?: RegExp;
  env?: Record<string, string>;
  timeoutMs?: number;
}

/** Starts `fanout ARGS…`, logs to DIR/NAME.log, and resolves on its ready line (`listening on URL` by default). */
export function spawnFanout(
  name: string,
  args: string[],
  logDir: string,
  opts: SpawnOptions = {},
): Promise<LabProcess> {
  mkdirSync(logDir, { recursive: true });
  const logFile = join(logDir, `${name}.log`);
  const log = createWriteStream(logFile, { flags: 'a' });
  const child = spawn(process.execPath, [BIN, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: childEnv({ FANOUT_LOG_LEVEL: process.env.FANOUT_LOG_LEVEL ?? 'info', ...opts.env }),
  });
  child.stderr!.pipe(log);
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const ready = opts.ready ?? /listening on (https?:\/\/\S+)/;
  const timeoutMs = opts.timeoutMs ?? 30_000;
  return new Promise((res, rej) => {
    let out: string | undefined = '';
    // A process that misses the start limit is stopped, not left running behind the error.
    const timer = setTimeout(() => {
      out = undefined;
      child.kill('SIGKILL');
      rej(new Error(`${name} did not start within ${timeoutMs / 1000} s; see ${logFile}`));
    }, timeoutMs);
    child.stdout!.on('data', (c: Buffer) => {
      log.write(c);
      if (out === undefined) return; // ready already: only the log wants the rest
      out += c.toString();
      const m = ready.exec(out);
      if (!m) return;
      out = undefined;
      clearTimeout(timer);
      res({
        name,
        child,
        url: m[1] ?? '',
        logFile,
        async stop(signal = 'SIGTERM') {
          if (child.exitCode === null && child.signalCode === null) child.kill(signal);
          return exited;
        },
        async kill() {
          if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
          await exited;
        },
      });
    });
    // 'close' comes after the output is flushed, so the log holds the process's last words.
    child.once('close', (code) => {
      if (out === undefined) return;
      clearTimeout(timer);
      const last = existsSync(logFile)
        ? readFileSync(logFile, 'utf8')
            .split('\n')
            .filter((l) => l.trim() && !l.startsWith('{'))
            .pop()
        : undefined;
      rej(
        new Error(
          `${name} exited (${code}) before it was ready${last ? `: ${last.replace(/^fanout: /, '')}` : ''}; see ${logFile}`,
        ),
      );
    });
  });
}

/** A device token in a 0600 file, never on a command line (argv shows in `ps`). */
export async function writeTokenFile(dir: string, id: string, token: string) {
  await mkdir(dir, { recursive: true });
  const f = join(dir, `${id}.token`);
  await writeFile(f, `${token}\n`, { mode: 0o600 });
  return f;
}
