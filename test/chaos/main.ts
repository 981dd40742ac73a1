// `npm run chaos`: chaos rounds (see chaos.ts), figures printed; exits 1 unless every figure is 0.
import { parseArgs } from 'node:util';
import { runChaos } from './chaos.ts';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '20' },
    relays: { type: 'string', default: '3' },
    endpoints: { type: 'string', default: '51' },
  },
});
const f = await runChaos({
  rounds: Number(values.rounds),
  relays: Number(values.relays),
  endpoints: Number(values.endpoints),
  say: (s) => console.log(`${new Date().toISOString().slice(11, 19)}  ${s}`),
});
console.log(JSON.stringify(f, null, 2));
const bad =
  f.commandsLost +
  f.targetsMisreported +
  f.duplicateInstalls +
  f.duplicateMails +
  f.ticketsNeverMailed +
  f.jobsNotConverged;
console.log(
  `commands lost ${f.commandsLost}, targets misreported ${f.targetsMisreported}, duplicate installs ${f.duplicateInstalls} (${f.installsInterrupted} run again after a kill cut them off), duplicate mails ${f.duplicateMails}, tickets never mailed ${f.ticketsNeverMailed}, jobs not converged ${f.jobsNotConverged} (${f.rounds} rounds, ${f.jobs} jobs, ${f.endpoints} endpoints, ${f.relays} relays; ${f.kills} kills, ${f.diskFaults} disk faults, ${f.smtpRefusals} SMTP refusals, ${f.tickets} tickets, ${f.mails} mails)`,
);
process.exit(bad ? 1 : 0);
