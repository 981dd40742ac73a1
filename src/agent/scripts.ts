// Running a package's scripts and commands: /bin/sh in the version's folder, killed with their whole
// process group when they run past their time, failing with the last lines they printed.
import { spawn } from 'node:child_process';
import { InstallError } from './state.ts';

export function run(
  cmd: string,
  args: string[],
  opts: { cwd: string; env: NodeJS.ProcessEnv; timeoutMs: number; label: string; onSpawn?: (pid: number) => void },
) {
  return new Promise<void>((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    if (child.pid) opts.onSpawn?.(child.pid);
    let out = '';
    const keep = (c: Buffer) => (out = (out + c.toString()).slice(-2000));
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        /* already gone */
      }
      reject(
        new InstallError(
          'INSTALL_TIMEOUT',
          `${opts.label} did not finish within ${opts.timeoutMs / 1000}s and was killed`,
        ),
      );
    }, opts.timeoutMs);
    child.on(
      'error',
      (e) => (
        clearTimeout(timer), reject(new InstallError('INSTALL_FAILED', `${opts.label} could not start: ${e.message}`))
      ),
    );
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else
        reject(
          new InstallError(
            'INSTALL_FAILED',
            `${opts.label} exited with ${code ?? signal}${out.trim() ? `: ${out.trim().split('\n').slice(-3).join(' | ')}` : ''}`,
          ),
        );
    });
  });
}

/** Runs a package's script with /bin/sh in its folder (the uninstall script too). */
export function runScript(
  script: string,
  opts: { cwd: string; env: NodeJS.ProcessEnv; timeoutMs: number; label: string },
) {
  return run('/bin/sh', [script], opts);
}
