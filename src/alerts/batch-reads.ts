// What an intake batch reads before its steps run: once for the whole batch, then for each slice
// of its alerts, each read bounded by the slice's device names, jobs, relays and alert ids, and
// each answerable from an index.
import type { InferResult, Transaction } from 'kysely';
import { type Database, oneOf, pairOf } from '../store/index.ts';
import { openFailed } from './failed-records.ts';
import type { IncomingAlert } from './incoming.ts';

type Tx = Transaction<Database>;

/** Read once a batch: the highest alert id, the locations' generation, down relays, the outages of its time span. */
export function batchReads(tx: Tx, from: string, to: string) {
  return {
    top: tx.selectFrom('alerts').select((eb) => eb.fn.max('id').as('top')),
    generation: tx.selectFrom('generations').select('value').where('name', '=', 'locations'),
    down: tx.selectFrom('relays').select(['id', 'down_since']).where('down_since', 'is not', null),
    outages: tx.selectFrom('outages').selectAll().where('until_at', '>', from).where('from_at', '<=', to),
  };
}

/** What the steps read for a slice of a batch's alerts, each read bounded by the slice's names. */
export function sliceReads(tx: Tx, slice: IncomingAlert[]) {
  const set = (f: (a: IncomingAlert) => string | undefined) => [...new Set(slice.flatMap((a) => f(a) || []))];
  const names = set((a) => a.deviceId);
  const jobs = set((a) => a.jobId);
  const relays = set((a) => a.relayId);
  // Each list is one parameter (oneOf): the statements read the same whatever the slice holds.
  const named = tx.selectFrom('devices').where((eb) => eb.or([oneOf(tx, 'id', names), oneOf(tx, 'hostname', names)]));
  return {
    stored: tx
      .selectFrom('alerts')
      .select(['id', 'source', 'alert_id', 'outcome', 'ticket_id'])
      .where(
        pairOf(
          tx,
          ['source', 'alert_id'],
          slice.map((a) => [a.source, a.alertId]),
        ),
      ),
    devices: named.selectAll(),
    overrides: tx.selectFrom('device_overrides').selectAll().where('device_id', 'in', named.select('id')),
    open: tx
      .selectFrom('tickets')
      .selectAll()
      .where('device_id', 'in', named.select('id'))
      .where('state', '!=', 'resolved'),
    // The relay of an alert is its own, the named relay device, or the named device's relay: each
    // an `in` the (relay, job) index can answer (an `or` of them scanned the whole table).
    failed: openFailed(tx)
      .where(
        'relay_id',
        'in',
        named
          .where('kind', '=', 'relay')
          .select('id')
          .union(named.select((eb) => eb.ref('relay').$notNull().as('id'))),
      )
      .where(oneOf(tx, 'job_id', jobs)),
    failedOfGiven: openFailed(tx)
      .where(oneOf(tx, 'relay_id', relays))
      .where(oneOf(tx, 'job_id', jobs)),
  };
}

/** The rows of one slice's reads. */
export type SliceRows = { [K in keyof ReturnType<typeof sliceReads>]: InferResult<ReturnType<typeof sliceReads>[K]> };
