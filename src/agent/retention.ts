// Retention on an endpoint (DESIGN §17): the last `keepVersions` installs of a package stay (for a
// rollback without a download); older ones go, never the one `current` points at.
import { readlink, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { installedMarker, runningMarker, treeFile } from './attest.ts';
import type { AgentState } from './state.ts';

export async function pruneVersions(state: AgentState, root: string, name: string, keep: number): Promise<string[]> {
  const all = await state.installed();
  const current = await readlink(join(root, name, 'current')).catch(() => undefined);
  const mine = Object.values(all)
    .filter((e) => e.name === name)
    .sort((a, b) => b.installedAt.localeCompare(a.installedAt));
  const gone = mine.slice(Math.max(1, keep)).filter((e) => e.version !== current);
  for (const e of gone) {
    // The marker first: a prune cut short leaves a folder to install again, never a marker without files.
    await rm(installedMarker(root, e), { force: true });
    await rm(join(root, name, e.version), { recursive: true, force: true });
    await rm(treeFile(root, e), { force: true });
    await rm(runningMarker(root, e), { force: true });
  }
  if (gone.length) await state.forget(gone.map((e) => `${e.name}@${e.version}`));
  return gone.map((e) => e.version);
}
