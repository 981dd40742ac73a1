// Events that must reach every master on the database (DESIGN §15), through PostgreSQL NOTIFY
// (with SQLite, this process only): new commands wake relays long-polling any master, and
// dashboards follow changes made through any of them.
import { randomUUID } from 'node:crypto';
import type { EventEmitter } from 'node:events';
import type { Store } from '../store/index.ts';

export async function shareEvents(store: Store, events: EventEmitter) {
  await store.onNotice('fanout_commands', (ids) => {
    for (const id of ids.split(',')) events.emit(`commands:${id}`);
  });
  // At most 4 notices a second; a master ignores its own.
  const self = randomUUID();
  let pending: NodeJS.Timeout | undefined;
  events.on('changed', () => {
    pending ??= setTimeout(() => {
      pending = undefined;
      store.notify('fanout_changed', self).catch(() => undefined);
    }, 250);
  });
  await store.onNotice('fanout_changed', (from) => {
    if (from !== self) events.emit('changed elsewhere');
  });
  return () => clearTimeout(pending);
}
