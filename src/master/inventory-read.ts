// The master reads a large inventory without holding up its event loop: the text is parsed on a
// worker thread (100k devices of YAML take most of a second) and comes back in slices of devices,
// each a message of its own, so health checks and endpoints get a turn in between.
import { createRequire } from 'node:module';
import { type InventoryFile, invalidText, parseInventory, validateInventory } from './inventory-file.ts';

/** Below this size parsing in place is quicker than starting a thread. */
const OFF_THREAD_BYTES = 1 << 20;
const SLICE = 5000;

const WORKER = `const { parentPort, workerData } = require('node:worker_threads');
let raw;
try {
  const t = workerData.text;
  const yaml = require(workerData.lib);
  raw = t.trimStart().startsWith('{') ? JSON.parse(t) : yaml.load(t, { schema: yaml.CORE_SCHEMA });
} catch (e) {
  parentPort.postMessage({ error: String(e && e.message) });
}
if (raw !== undefined) {
  const devices = raw && Array.isArray(raw.devices) ? raw.devices : undefined;
  parentPort.postMessage({ head: devices ? { ...raw, devices: [] } : raw });
  for (let i = 0; devices && i < devices.length; i += workerData.slice)
    parentPort.postMessage({ devices: devices.slice(i, i + workerData.slice) });
  parentPort.postMessage({ done: true });
}`;

type Message = { error?: string; head?: Record<string, unknown>; devices?: unknown[]; done?: true };

export async function readInventory(text: string): Promise<InventoryFile> {
  if (text.length < OFF_THREAD_BYTES) return parseInventory(text);
  const { Worker } = await import('node:worker_threads');
  const lib = createRequire(import.meta.url).resolve('js-yaml');
  const raw = await new Promise<unknown>((resolve, reject) => {
    const w = new Worker(WORKER, { eval: true, workerData: { text, lib, slice: SLICE } });
    let head: Record<string, unknown> | undefined;
    const devices: unknown[] = [];
    w.on('message', (m: Message) => {
      if (m.error !== undefined) return reject(invalidText(new Error(m.error)));
      if (m.head) head = m.head;
      if (m.devices) for (const d of m.devices) devices.push(d);
      if (m.done) resolve(head && Array.isArray(head.devices) ? { ...head, devices } : head);
    });
    w.once('error', reject);
    w.once('exit', (c) => c && reject(new Error(`the inventory parser exited (${c})`)));
  });
  return validateInventory(raw);
}
