// What a relay's heartbeat costs the master at 1,000 relays, each every 5 s (their default): 200 a
// second, paced as they come, not a flood. Against a relay's smallest authenticated read (its open
// failed distributions) at the same pace, in pairs taking turns: the heartbeat's own share is its write.
import { Pool } from 'undici';
import { cpuSeconds, median } from './baselines.ts';

const RATE = 200;
const SECONDS = 10;
const PAIRS = 3;

export async function heartbeatCost(url: string, pid: number, ids: string[], token: Map<string, string>) {
  const pool = new Pool(url, { connections: 200 });
  const heartbeat = (id: string) =>
    pool.request({
      method: 'POST',
      path: '/api/v1/relay/heartbeat',
      body: JSON.stringify({ url: 'https://127.0.0.1:1/' }),
      headers: { authorization: `Bearer ${token.get(id)}`, 'content-type': 'application/json' },
    });
  const read = (id: string) =>
    pool.request({
      method: 'GET',
      path: '/api/v1/relay/failed',
      headers: { authorization: `Bearer ${token.get(id)}` },
    });
  /** Master CPU per request, `send` RATE times a second for `secs`, each relay in turn. */
  const paced = async (send: typeof read, secs: number) => {
    const n = RATE * secs;
    const cpu0 = cpuSeconds(pid);
    const t0 = performance.now();
    const sent: Promise<void>[] = [];
    for (let i = 0; i < n; i++) {
      const wait = t0 + (i * 1000) / RATE - performance.now();
      if (wait > 1) await new Promise((r) => setTimeout(r, wait));
      sent.push(
        send(ids[i % ids.length]).then(async (res) => {
          const text = await res.body.text();
          if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}: ${text}`);
        }),
      );
    }
    await Promise.all(sent);
    return (1e6 * (cpuSeconds(pid) - cpu0)) / n;
  };
  try {
    // Every relay once each way first: tokens looked up, code warmed.
    await paced(heartbeat, ids.length / RATE);
    await paced(read, ids.length / RATE);
    const beats: number[] = [];
    const reads: number[] = [];
    for (let i = 0; i < PAIRS; i++) {
      beats.push(await paced(heartbeat, SECONDS));
      reads.push(await paced(read, SECONDS));
    }
    return {
      heartbeatUs: median(beats),
      readUs: median(reads),
      pairs: beats.map((b, i) => `${b.toFixed(0)}/${reads[i].toFixed(0)}`),
    };
  } finally {
    await pool.close();
  }
}
