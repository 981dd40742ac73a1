// The lab's processes: a master, relays and agents as real child processes on loopback.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const BIN = resolve(fileURLToPath(import.meta.url), '..', '..', '..', 'bin', 'fanout.js');

export interface LabProcess { name: string; child: ChildProcess; url: string; stop(): Promise<void> }

/** Starts `fanout ARGS…`, logs to DIR/logs/NAME.log, and resolves on its ready line. */
export function spawnFanout(name: string, args: string[], logDir: string, ready = /listening on (http:\/\/\S+)/): Promise<LabProcess> {
  mkdirSync(logDir, { recursive: true });
  const log = createWriteStream(join(logDir, `${name}.log`), { flags: 'a' });
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, FANOUT_LOG_LEVEL: process.env.FANOUT_LOG_LEVEL ?? 'info' } });
  child.stderr!.pipe(log);
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  return new Promise((res, rej) => {
    let out = '';
    const timer = setTimeout(() => rej(new Error(`${name} did not start within 30 s; see ${join(logDir, `${name}.log`)}`)), 30_000);
    child.stdout!.on('data', (c: Buffer) => {
      log.write(c);
      if (out === null) return;
      out += c.toString();
      const m = ready.exec(out);
      if (m) {
        clearTimeout(timer);
        res({
          name, child, url: m[1] ?? '',
          async stop() {
            if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
            await exited;
          },
        });
      }
    });
    // 'close' comes after the output is flushed, so the log holds the process's last words.
    child.once('close', (code) => {
      clearTimeout(timer);
      const file = join(logDir, `${name}.log`);
      const last = existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter((l) => l.trim() && !l.startsWith('{')).pop() : undefined;
      rej(new Error(`${name} exited (${code}) before it was ready${last ? `: ${last.replace(/^fanout: /, '')}` : ''}; see ${file}`));
    });
  });
}
