// Following a redistribution on the relay until its job ends, with a progress display.
import { setTimeout as sleep } from 'node:timers/promises';
import { Progress } from '../common/progress.ts';
import type { Client } from '../protocol/client.ts';

export async function follow(relay: Client, jobId: string, timeoutMs: number, quiet?: boolean): Promise<string> {
  const progress = new Progress(`  ${jobId}`, process.stderr, quiet);
  const until = Date.now() + timeoutMs;
  try {
    for (;;) {
      const j = await relay.get<{
        state: string;
        distributionList: string[];
        targets: { deviceId: string; state: string }[];
      }>(`admin/v1/jobs/${encodeURIComponent(jobId)}`);
      const list = new Set(j.distributionList);
      progress.update(
        j.targets.filter((t) => list.has(t.deviceId) && t.state === 'installed').length,
        list.size,
        j.state,
      );
      if (j.state === 'complete' || j.state === 'failed') return j.state;
      if (Date.now() > until) return 'timed out';
      await sleep(300);
    }
  } finally {
    progress.stop();
  }
}
