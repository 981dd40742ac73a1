// Step 4, normalize location: the inventory's location wins; the alert's text is kept beside it.
import { distance } from 'fastest-levenshtein';

export interface KnownLocation {
  code: string;
  name: string;
}
export interface Normalized {
  location: string;
  matched: 'exact code' | 'exact name' | 'fuzzy name' | 'none' | 'not given';
  replaced: boolean;
  detail: string;
}

const simplify = (s: string) =>
  s
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, ' ')
    .trim();

/** How close the alert's text is to a location name, 0..1 (1 = same words). */
function similarity(a: string, b: string) {
  const x = simplify(a);
  const y = simplify(b);
  if (!x || !y) return 0;
  const whole = 1 - distance(x, y) / Math.max(x.length, y.length);
  // Operators drop words ("Store 42 Dallas TX" for "Store 0042, Dallas, TX"): also score shared tokens.
  const tx = new Set(x.split(' ').map((t) => t.replace(/^0+(?=\d)/, '')));
  const ty = new Set(y.split(' ').map((t) => t.replace(/^0+(?=\d)/, '')));
  const shared = [...tx].filter((t) => ty.has(t)).length;
  const tokens = shared / Math.max(tx.size, ty.size);
  return Math.max(whole, tokens);
}

export function normalizeLocation(
  reported: string | undefined,
  inventory: KnownLocation,
  all: KnownLocation[],
): Normalized {
  if (!reported)
    return {
      location: inventory.code,
      matched: 'not given',
      replaced: false,
      detail: `no location in the alert; inventory says ${inventory.code}`,
    };
  if (reported === inventory.code)
    return {
      location: inventory.code,
      matched: 'exact code',
      replaced: false,
      detail: `"${reported}" is the device's location code`,
    };
  if (simplify(reported) === simplify(inventory.name))
    return {
      location: inventory.code,
      matched: 'exact name',
      replaced: false,
      detail: `"${reported}" is the name of ${inventory.code}`,
    };
  const own = similarity(reported, inventory.name);
  const best = all
    .map((l) => ({
      l,
      s: Math.max(similarity(reported, l.name), l.code.toLowerCase() === reported.toLowerCase() ? 1 : 0),
    }))
    .sort((a, b) => b.s - a.s)[0];
  if (own >= 0.6 && (!best || best.l.code === inventory.code || own >= best.s))
    return {
      location: inventory.code,
      matched: 'fuzzy name',
      replaced: false,
      detail: `"${reported}" is close to "${inventory.name}" (${inventory.code}, score ${own.toFixed(2)})`,
    };
  const other = best && best.s >= 0.6 ? ` (it looks like ${best.l.code})` : '';
  return {
    location: inventory.code,
    matched: 'none',
    replaced: true,
    detail: `"${reported}" does not match the device's location${other}; the inventory's ${inventory.code} replaces it`,
  };
}
