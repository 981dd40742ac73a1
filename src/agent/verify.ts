// Re-verification (DESIGN §17): every installed version hashed again against what its install
// attested. A signed file changed or gone, or a file that was not there after the install, is drift.
import type { Logger } from '../common/log.ts';
import type { Client } from '../protocol/client.ts';
import { attest } from './attest.ts';
import type { AgentState } from './state.ts';

export interface Verification {
  package: string;
  version: string;
  state: 'ok' | 'drift' | 'missing';
  tree?: string;
  detail?: string;
}

export async function verifyInstalled(state: AgentState, defaultRoot: string): Promise<Verification[]> {
  const out: Verification[] = [];
  for (const e of Object.values(await state.installed())) {
    const base = { package: e.name, version: e.version };
    const at = await attest(e.root ?? defaultRoot, { name: e.name, version: e.version, tree: e.tree });
    if (!at.tree) {
      out.push({ ...base, state: 'missing', detail: at.problem });
      continue;
    }
    const added = at.extra.filter((x) => !(e.extra ?? []).includes(x));
    if (at.ok && !added.length) out.push({ ...base, state: 'ok', tree: at.tree });
    else
      out.push({
        ...base,
        state: 'drift',
        tree: at.tree,
        detail: [at.problem, added.length ? `${e.name}@${e.version}: extra ${added.slice(0, 5).join(', ')}` : '']
          .filter(Boolean)
          .join('; '),
      });
  }
  return out;
}

/** Verifies and tells the relay (which raises DRIFT for what changed); `requestId` answers `device verify`. */
export async function verifyAndReport(
  x: { state: AgentState; root: string; relay: Client; log: Logger },
  requestId?: string,
) {
  const results = await verifyInstalled(x.state, x.root);
  const drifted = results.filter((r) => r.state !== 'ok');
  if (drifted.length) x.log.warn({ drifted }, 'installed files drifted from their signed trees');
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      await x.relay.post('agent/v1/verifications', { ...(requestId ? { requestId } : {}), results });
      return results;
    } catch (e) {
      x.log.warn({ err: (e as Error).message }, 'verification not delivered; trying again');
      await new Promise((r) => setTimeout(r, 1000 * (attempt + 1)));
    }
  }
  return results;
}
