// An uninstall job (DESIGN §13): the package's uninstall script, from the version `current` points
// at, then every version of it, its markers and `current` go; the agent forgets it.
import { existsSync, readFileSync } from 'node:fs';
import { readlink, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { parseManifest } from '../protocol/package-file.ts';
import type { JobParams } from '../protocol/types.ts';
import { runScript } from './scripts.ts';
import { type AgentState, InstallError } from './state.ts';

export async function uninstallPackage(x: {
  name: string;
  root: string;
  state: AgentState;
  jobId: string;
  params: JobParams;
}) {
  const base = join(x.root, x.name);
  if (!existsSync(base)) return false; // nothing here: done already
  const current = await readlink(join(base, 'current')).catch(() => undefined);
  const dir = current ? join(base, current) : undefined;
  if (dir && existsSync(join(dir, 'fanout.json'))) {
    const manifest = parseManifest(readFileSync(join(dir, 'fanout.json'), 'utf8'), `${x.name}@${current}`);
    if (manifest.uninstall.run) {
      const script = join(dir, manifest.uninstall.run);
      if (!script.startsWith(`${dir}/`) || !existsSync(script))
        throw new InstallError(
          'PACKAGE_INVALID',
          `uninstall.run "${manifest.uninstall.run}" is not a file in the package`,
        );
      const timeoutMs = Math.min(
        86_400_000,
        1000 * Number(x.params.timeoutSec ?? manifest.uninstall.timeoutSec ?? 120),
      );
      await runScript(script, {
        cwd: dir,
        env: { ...process.env, FANOUT_PACKAGE: x.name, FANOUT_VERSION: current, FANOUT_JOB: x.jobId },
        timeoutMs,
        label: `uninstall script ${manifest.uninstall.run}`,
      });
    }
  }
  await rm(base, { recursive: true, force: true });
  const all = await x.state.installed();
  await x.state.forget(Object.keys(all).filter((k) => all[k].name === x.name));
  return true;
}
