// Step 4, normalize location: the inventory's location wins; the alert's text is kept beside it.
// A fleet has hundreds of sites and its relays repeat the same text alert after alert, so the
// inventory's locations are prepared once (simplified names, token sets) and each text's outcome
// for a device's location is remembered until the locations change.
import { distance } from 'fastest-levenshtein';

export interface KnownLocation {
  code: string;
  name: string;
  center: string;
}
export interface Normalized {
  location: string;
  matched: 'exact code' | 'exact name' | 'fuzzy name' | 'none' | 'not given';
  replaced: boolean;
  detail: string;
}

interface Prepared extends KnownLocation {
  simple: string;
  tokens: Set<string>;
}

const simplify = (s: string) =>
  s
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, ' ')
    .trim();
// Operators drop words and zeros ("Store 42 Dallas TX" for "Store 0042, Dallas, TX").
const tokensOf = (simple: string) => new Set(simple.split(' ').map((t) => t.replace(/^0+(?=\d)/, '')));

/** A text this similar to a name or more is close to it. */
const CLOSE = 0.6;

/** How close the alert's text is to a location name, 0..1 (1 = same words); exact from CLOSE up. */
function similarity(x: string, tx: Set<string>, l: Prepared) {
  if (!x || !l.simple) return 0;
  const longest = Math.max(x.length, l.simple.length);
  let shared = 0;
  const [few, many] = tx.size < l.tokens.size ? [tx, l.tokens] : [l.tokens, tx]; // a long text costs a name's words
  for (const t of few) if (many.has(t)) shared++;
  const tokens = shared / Math.max(tx.size, l.tokens.size);
  // The edit distance is at least the difference in length: skip it when it cannot win, or cannot
  // reach CLOSE (below it, any score decides the same).
  const bound = 1 - Math.abs(x.length - l.simple.length) / longest;
  if (bound <= tokens || bound < CLOSE) return tokens;
  return Math.max(1 - distance(x, l.simple) / longest, tokens);
}

/** Texts remembered per set of locations (past it, the memory starts again), and their longest. */
const MEMO = 10_000;
const MEMO_TEXT = 200;

export class Locations {
  private readonly byCode = new Map<string, Prepared>();
  private readonly memo = new Map<string, Normalized>();

  constructor(rows: KnownLocation[]) {
    for (const r of rows) {
      const simple = simplify(r.name);
      this.byCode.set(r.code, { ...r, simple, tokens: tokensOf(simple) });
    }
  }

  get(code: string): KnownLocation | undefined {
    return this.byCode.get(code);
  }

  /** The alert's location text against the device's inventory location (`code`). */
  normalize(reported: string | undefined, code: string): Normalized {
    // Site names are short; a text longer than any is matched each time (its length rules most out).
    if (reported && reported.length > MEMO_TEXT) return this.match(reported, this.byCode.get(code)!);
    const key = `${code}\0${reported ?? ''}`;
    let n = this.memo.get(key);
    if (!n) {
      if (this.memo.size >= MEMO) this.memo.clear();
      n = this.match(reported, this.byCode.get(code)!);
      this.memo.set(key, n);
    }
    return n;
  }

  private match(reported: string | undefined, inventory: Prepared): Normalized {
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
    const x = simplify(reported);
    if (x === inventory.simple)
      return {
        location: inventory.code,
        matched: 'exact name',
        replaced: false,
        detail: `"${reported}" is the name of ${inventory.code}`,
      };
    const tx = tokensOf(x);
    const own = similarity(x, tx, inventory);
    const lower = reported.toLowerCase();
    let best: { l: Prepared; s: number } | undefined;
    for (const l of this.byCode.values()) {
      const s = l.code.toLowerCase() === lower ? 1 : similarity(x, tx, l);
      if (!best || s > best.s) best = { l, s };
    }
    if (own >= CLOSE && (!best || best.l.code === inventory.code || own >= best.s))
      return {
        location: inventory.code,
        matched: 'fuzzy name',
        replaced: false,
        detail: `"${reported}" is close to "${inventory.name}" (${inventory.code}, score ${own.toFixed(2)})`,
      };
    const other = best && best.s >= CLOSE ? ` (it looks like ${best.l.code})` : '';
    return {
      location: inventory.code,
      matched: 'none',
      replaced: true,
      detail: `"${reported}" does not match the device's location${other}; the inventory's ${inventory.code} replaces it`,
    };
  }
}
