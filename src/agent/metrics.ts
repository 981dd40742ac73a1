// The agent's /metrics: prom-client loads on the first scrape, so an agent nobody scrapes does not carry it.
import type { Registry } from 'prom-client';

export function lazyMetrics(installs: Record<'installed' | 'failed', number>) {
  let registry: Promise<Registry> | undefined;
  return () =>
    (registry ??= (async () => {
      const prom = await import('prom-client');
      const r = new prom.Registry();
      prom.collectDefaultMetrics({ register: r, eventLoopMonitoringPrecision: 1000 });
      new prom.Counter({
        name: 'fanout_agent_installs_total',
        help: 'Packages installed, by result',
        labelNames: ['result'],
        registers: [r],
        collect() {
          this.reset();
          for (const [result, n] of Object.entries(installs)) this.inc({ result }, n);
        },
      });
      return r;
    })());
}
