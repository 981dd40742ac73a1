// A version's scripts whose run the agent's stop cut off (killed, power lost). While they run, a
// marker names the job and the process group running them; on the next try the agent stops what is
// left of that group, so two runs never overlap, and tells the scripts (FANOUT_INTERRUPTED=1).
import { existsSync, readFileSync, readlinkSync, realpathSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { writeDurably } from '../common/files.ts';
import { runningMarker } from './attest.ts';

const cwdOf = (pid: number) => {
  try {
    return readlinkSync(`/proc/${pid}/cwd`);
  } catch {
    return undefined;
  }
};
const realFolder = (path: string) => {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
};

/** A process by pid, start time and boot: a pid reused after a reboot or by another process is not it. */
function identity(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (fields[0] === 'Z') return undefined; // exited, not yet reaped
    const boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    return `${pid} ${fields[19]} ${boot}`;
  } catch {
    return undefined; // gone, or no /proc here
  }
}

export class ScriptRun {
  private constructor(
    private readonly marker: string,
    private readonly jobId: string,
    /** An earlier run was cut off. */
    readonly interrupted: boolean,
  ) {}

  /** Before the scripts: stops what a cut-off run left running, and says whether there was one. */
  static async prepare(root: string, pkg: { name: string; version: string }, jobId: string) {
    const marker = runningMarker(root, pkg);
    if (!existsSync(marker)) return new ScriptRun(marker, jobId, false);
    const [, group] = readFileSync(marker, 'utf8').split('\n');
    const pid = Number(group?.split(' ')[0]);
    // Only the group the agent started in this version's folder: a marker naming any other process
    // (planted, or stale) kills nothing.
    if (pid > 1 && identity(pid) === group && cwdOf(pid) === realFolder(join(root, pkg.name, pkg.version))) {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        /* gone meanwhile */
      }
      for (let i = 0; i < 50 && identity(pid) === group; i++) await sleep(100);
    }
    return new ScriptRun(marker, jobId, true);
  }

  /** The scripts are about to run; `spawned` names each one's process group as it starts. */
  begin() {
    writeDurably(this.marker, `${this.jobId}\n`);
  }

  spawned(pid: number) {
    const id = identity(pid);
    if (id) writeDurably(this.marker, `${this.jobId}\n${id}\n`);
  }

  /** The scripts ended (well or not) and the agent saw it: a next try is an ordinary one. */
  async end() {
    await rm(this.marker, { force: true });
  }
}
