// The alerts table's row as intake writes it, and the writer that stores one (store's rowWriter).
import { type Database, type Db, rowWriter } from '../store/index.ts';

export type AlertRow = Omit<Database['alerts'], 'id'>;
/** Writes one alert row and gives its id (SQLite, rowWriter), where the store has such a writer. */
export type AlertWriter = ((row: AlertRow) => number) | undefined;

const ALERT_COLUMNS = [
  'source',
  'alert_id',
  'received_at',
  'at',
  'raw',
  'format',
  'device_id',
  'failure_type',
  'location',
  'location_reported',
  'job_id',
  'message',
  'outcome',
  'steps',
  'ticket_id',
  'counted',
] as const satisfies readonly (keyof AlertRow)[];

/** The alert center's writer of alert rows on this database. */
export const alertWriter = (db: Db): AlertWriter => rowWriter(db, 'alerts', ALERT_COLUMNS);
