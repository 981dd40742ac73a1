// Fault injection (DESIGN §9): only for daemons started with --allow-faults.
// Spec: "point=value,point=value". "fail:N" or "ENOSPC:N" (any errno) fires N times, then clears itself.
export class Faults {
  private readonly active = new Map<string, string>();
  constructor(
    readonly allowed: boolean,
    initial = process.env.FANOUT_FAULTS ?? '',
  ) {
    if (allowed) this.set(initial);
  }

  set(spec: string | Record<string, string>) {
    const pairs =
      typeof spec === 'string'
        ? spec
            .split(',')
            .map((s) => s.trim())
            .filter(Boolean)
            .map((s) => {
              const i = s.indexOf('=');
              if (i <= 0) throw new Error(`fault "${s}" must look like point=value, e.g. relay.depot.write=ENOSPC`);
              return [s.slice(0, i), s.slice(i + 1)] as const;
            })
        : Object.entries(spec);
    for (const [k, v] of pairs) this.active.set(k, v);
  }

  clear(point?: string) {
    if (point) this.active.delete(point);
    else this.active.clear();
  }

  list() {
    return Object.fromEntries(this.active);
  }

  /** The fault's value if it fires now. */
  take(point: string): string | undefined {
    const v = this.active.get(point);
    if (v === undefined) return undefined;
    const m = /^(fail|[A-Z][A-Z0-9_]*):(\d+)$/.exec(v);
    if (m) {
      const left = Number(m[2]) - 1;
      if (left <= 0) this.active.delete(point);
      else this.active.set(point, `${m[1]}:${left}`);
    }
    return v;
  }

  /** Throws an errno-style error when an errno fault (ENOSPC, ECONNRESET…) is set on this point. */
  throwIf(point: string) {
    const v = this.take(point);
    if (v === undefined) return;
    const name = v.split(':')[0];
    const code = name === 'fail' || name === 'exit' ? 'EIO' : name;
    const messages: Record<string, string> = {
      ENOSPC: 'ENOSPC: no space left on device',
      ECONNRESET: 'ECONNRESET: connection reset by peer',
      ECONNREFUSED: 'ECONNREFUSED: connection refused',
    };
    const err = new Error(`${messages[code] ?? code} (injected at ${point})`) as NodeJS.ErrnoException;
    err.code = code;
    throw err;
  }
}
