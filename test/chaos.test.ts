// The short version of `npm run chaos` (issue 9): two rounds of jobs on PostgreSQL while relays,
// agents and the master are killed, a relay's disk fills and SMTP refuses; then the truth on every
// endpoint's disk, the relays' job logs and the mail sink must match what the master reports.
import { describe, expect, it } from 'vitest';
import { runChaos } from './chaos/chaos.ts';

describe('chaos (short)', () => {
  it('loses no command, misreports no target, installs and mails nothing twice, leaves no ticket unmailed', async () => {
    const f = await runChaos({ rounds: 2, relays: 3, endpoints: 9 });
    expect({
      commandsLost: f.commandsLost,
      targetsMisreported: f.targetsMisreported,
      duplicateInstalls: f.duplicateInstalls,
      duplicateMails: f.duplicateMails,
      ticketsNeverMailed: f.ticketsNeverMailed,
      jobsNotConverged: f.jobsNotConverged,
    }).toEqual({
      commandsLost: 0,
      targetsMisreported: 0,
      duplicateInstalls: 0,
      duplicateMails: 0,
      ticketsNeverMailed: 0,
      jobsNotConverged: 0,
    });
    expect(f.kills).toBeGreaterThan(0);
  }, 300_000);
});
