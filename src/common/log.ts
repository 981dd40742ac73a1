import { type Logger, pino } from 'pino';

export type { Logger };
// JSON lines on stderr, so stdout stays for the "listening on" line and command output.
export const createLogger = (name: string, level = process.env.FANOUT_LOG_LEVEL ?? 'info') =>
  pino({ name, level }, pino.destination({ fd: 2, sync: true }));
