// Reads that scan whole tables (the gauges a Prometheus scrape reads: alerts by outcome, targets by
// state; the fleet view's counts and searches), kept off the master's event loop. better-sqlite3
// answers synchronously, so a count over a million alerts held every request for half a second;
// here SQLite's scans run on their own read-only connection in a worker thread (WAL lets it read
// beside the writer). PostgreSQL runs them in its server already.
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

// CommonJS, evaluated: the worker needs no file of its own in the bundle.
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.module);
const db = new Database(workerData.file, { readonly: true, fileMustExist: true });
db.pragma('busy_timeout = 5000');
parentPort.on('message', ({ id, text, parameters }) => {
  try {
    parentPort.postMessage({ id, rows: db.prepare(text).all(...parameters) });
  } catch (e) {
    parentPort.postMessage({ id, error: String(e && e.message) });
  }
});
`;

export type Scan = <T>(text: string, parameters?: readonly unknown[]) => Promise<T[]>;

/** Runs read-only SQL on `file` in a worker, one statement at a time; the worker starts on first use. */
export function sqliteScanner(file: string): { scan: Scan; close: () => Promise<void> } {
  let worker: Worker | undefined;
  let next = 0;
  const waiting = new Map<number, { resolve: (rows: unknown[]) => void; reject: (e: Error) => void }>();
  const fail = (e: Error) => {
    for (const w of waiting.values()) w.reject(e);
    waiting.clear();
    worker = undefined;
  };
  const start = () => {
    const w = new Worker(WORKER, {
      eval: true,
      workerData: { file, module: createRequire(import.meta.url).resolve('better-sqlite3') },
    });
    w.on('message', (m: { id: number; rows?: unknown[]; error?: string }) => {
      const p = waiting.get(m.id);
      waiting.delete(m.id);
      if (m.error !== undefined) p?.reject(new Error(m.error));
      else p?.resolve(m.rows ?? []);
      if (!waiting.size) w.unref(); // idle: it does not keep the process alive
    });
    w.on('error', fail);
    w.on('exit', (code) => fail(new Error(`the database reader stopped (exit ${code})`)));
    return w;
  };
  const scan: Scan = <T>(text: string, parameters: readonly unknown[] = []) =>
    new Promise<T[]>((resolve, reject) => {
      worker ??= start();
      worker.ref();
      const id = next++;
      waiting.set(id, { resolve: resolve as (rows: unknown[]) => void, reject });
      worker.postMessage({ id, text, parameters });
    });
  const close = async () => {
    const w = worker;
    worker = undefined;
    await w?.terminate();
  };
  return { scan, close };
}
