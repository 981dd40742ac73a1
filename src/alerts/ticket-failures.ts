// The failed distributions a ticket stands for. A record names only the last ticket an alert
// attached to it: when two endpoints' installs failed, each has its own ticket, and resolving the
// earlier one must still find the record: by its job, its type, and the relay the device is a target of.
import { type Db, oneOf } from '../store/index.ts';

/** The open failed distributions a ticket's alerts fed. */
export async function openFailuresOf(db: Db, ticketId: string) {
  const t = await db
    .selectFrom('tickets')
    .select(['device_id', 'failure_type', 'jobs'])
    .where('id', '=', ticketId)
    .executeTakeFirst();
  const jobs: string[] = t ? JSON.parse(t.jobs) : [];
  return db
    .selectFrom('failed_distributions as f')
    .selectAll('f')
    .where('f.state', '!=', 'resolved')
    .where((eb) =>
      eb.or([
        eb('f.ticket_id', '=', ticketId),
        ...(t && jobs.length
          ? [
              eb.and([
                eb('f.failure_type', '=', t.failure_type),
                oneOf(db, 'f.job_id', jobs),
                eb.or([
                  eb('f.relay_id', '=', t.device_id),
                  eb.exists(
                    eb
                      .selectFrom('targets as g')
                      .select('g.device_id')
                      .whereRef('g.job_id', '=', 'f.job_id')
                      .whereRef('g.relay_id', '=', 'f.relay_id')
                      .where('g.device_id', '=', t.device_id),
                  ),
                ]),
              ]),
            ]
          : []),
      ]),
    )
    .orderBy('f.id')
    .execute();
}
