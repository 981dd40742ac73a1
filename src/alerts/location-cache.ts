// The inventory's locations, prepared once and kept between intake batches: a fleet of hundreds of
// sites read them whole for every batch, and matched each alert's text against every one anew.
// The database stays the truth: an inventory import bumps the locations' generation in its own
// transaction, and a batch that finds another generation reads them again.
import type { Transaction } from 'kysely';
import { bumpGeneration, type Database } from '../store/index.ts';
import { Locations } from './location.ts';

type Tx = Transaction<Database>;

/** In the transaction that writes locations. */
export const locationsChanged = (tx: Tx) => bumpGeneration(tx, 'locations');

export class LocationCache {
  private held?: { generation: number; locations: Locations };

  /** The locations of this generation (read with the batch), from the database if not held. */
  async current(tx: Tx, generation: number) {
    if (this.held?.generation !== generation)
      this.held = {
        generation,
        locations: new Locations(await tx.selectFrom('locations').select(['code', 'name', 'center']).execute()),
      };
    return this.held.locations;
  }
}
