// The durable floor of alert intake, a baseline for the alerts bench: the least any intake does that
// answers only once its alerts are on disk. HTTP (node's own server), JSON, one indexed row per
// alert (deduplicated by id), one fsync per group of requests (SQLite WAL, synchronous=FULL), and
// nothing else: no validation, no steps, no tickets. Usage: node durable-floor.mjs DB PORT
import { createServer } from 'node:http';
import BetterSqlite3 from 'better-sqlite3';

const [file, port] = process.argv.slice(2);
const db = new BetterSqlite3(file);
db.pragma('journal_mode = WAL');
db.pragma('synchronous = FULL');
db.exec(
  'create table if not exists alerts (id integer primary key, alert_id text not null unique, received_at text not null, raw text not null)',
);
const insert = db.prepare('insert into alerts (alert_id, received_at, raw) values (?, ?, ?) on conflict do nothing');
const find = db.prepare('select id from alerts where alert_id = ?');
const store = db.transaction((group) =>
  group.map((r) =>
    r.alerts.map((a) => {
      const at = new Date().toISOString();
      const res = insert.run(String(a.alertId), at, JSON.stringify(a));
      return res.changes ? Number(res.lastInsertRowid) : find.get(String(a.alertId)).id;
    }),
  ),
);

let queue = [];
const drain = () => {
  const group = queue;
  queue = [];
  const ids = store(group);
  for (const [i, r] of group.entries()) r.answer(ids[i]);
};

createServer((req, res) => {
  if (req.method === 'GET') return void res.end('ready');
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    let alerts;
    try {
      alerts = JSON.parse(Buffer.concat(chunks).toString());
    } catch {
      return void res.writeHead(400).end();
    }
    const answer = (ids) => {
      const body = JSON.stringify({ ids });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body);
    };
    // The group is taken once the loop has read every request waiting on the sockets.
    if (queue.push({ alerts, answer }) === 1) setImmediate(drain);
  });
}).listen(Number(port), '127.0.0.1');
