// Which endpoints an ended job failed, and which it installed, kept small: Bloom filters of about
// ten bits an endpoint (about one in two hundred others answers "maybe"). A late report or a drift
// answer from an endpoint a filter rules out cannot change the job, so it is answered without
// reading the job back from its log (a third of a second for a 10,000-endpoint job here: one
// endpoint's token must not buy that at will).
const HASHES = 7;
const BITS_PER_ENTRY = 10;

/** FNV-1a over the id's UTF-16 units, from a given basis. */
function fnv(id: string, basis: number) {
  let h = basis >>> 0;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

function* positions(id: string, bits: number) {
  const a = fnv(id, 0x811c9dc5);
  const b = fnv(id, 0x050c5d1f) | 1;
  for (let i = 0; i < HASHES; i++) yield ((a + Math.imul(i, b)) >>> 0) % bits;
}

/** The filter, as base64 (it goes into the job's summary file). */
export function deviceFilter(ids: readonly string[]): string {
  const bytes = Buffer.alloc(Math.max(8, Math.ceil((ids.length * BITS_PER_ENTRY) / 8)));
  const bits = bytes.length * 8;
  for (const id of ids) for (const p of positions(id, bits)) bytes[p >> 3] |= 1 << (p & 7);
  return bytes.toString('base64');
}

/** The last filter decoded: late reports come in runs, for one job. */
let last = { filter: '', bytes: Buffer.alloc(0) };

/** False only for an endpoint certainly not in the filter. */
export function mayContain(filter: string, deviceId: string): boolean {
  if (filter !== last.filter) last = { filter, bytes: Buffer.from(filter, 'base64') };
  const { bytes } = last;
  const bits = bytes.length * 8;
  if (!bits) return true;
  for (const p of positions(deviceId, bits)) if (!(bytes[p >> 3] & (1 << (p & 7)))) return false;
  return true;
}
