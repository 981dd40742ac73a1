// Running a package's scripts and commands: /bin/sh in the version's folder, killed with their whole
// process group when they run past their time, failing with the last lines they printed.
import { spawn } from 'node:child_process';
import { InstallError } from './state.ts';

// With onSpawn the command first waits at a gate, and starts only once onSpawn has returned: a caller
// that writes down the process before it runs (the cut-off marker) never leaves one it did not name.
// An agent that dies before that closes the gate's pipe, and the command never starts.
const GATE = 'read -r _ || exit 125; exec "$@"';

export function run(
  cmd: string,
  args: string[],
  opts: { cwd: string; env: NodeJS.ProcessEnv; timeoutMs: number; label: string; onSpawn?: (pid: number) => void },
) {
  return new Promise<void>((resolve, reject) => {
    const gated = opts.onSpawn !== undefined;
    const child = spawn(gated ? '/bin/sh' : cmd, gated ? ['-c', GATE, 'fanout-gate', cmd, ...args] : args, {
      cwd: opts.cwd,
      env: opts.env,
      stdio: 'pipe', // stdin reads as empty, as /dev/null would, once the gate is passed
      detached: true,
    });
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
    child.stdin.on('error', () => {}); // a command that could not start: 'error' above says why
    try {
      if (gated && child.pid) opts.onSpawn!(child.pid);
    } catch (e) {
      child.stdin.destroy(); // the gate closes and the command never runs
      clearTimeout(timer);
      reject(new InstallError('INSTALL_FAILED', `${opts.label} was not started: ${(e as Error).message}`));
      return;
    }
    child.stdin.end(gated ? '\n' : '');
  });
}

/** Runs a package's script with /bin/sh in its folder (the uninstall script too). */
export function runScript(
  script: string,
  opts: { cwd: string; env: NodeJS.ProcessEnv; timeoutMs: number; label: string },
) {
  return run('/bin/sh', [script], opts);
}
