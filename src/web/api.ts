// The dashboard's access to the master's API: the token, JSON calls, and live change events.
const KEY = 'fanout.token';
// The tab's session only: closing the tab forgets the token (a shared till-side PC keeps nothing).
const store = window.sessionStorage;

export function initialToken(): string | null {
  const url = new URL(window.location.href);
  const t = url.searchParams.get('token');
  if (t) {
    store.setItem(KEY, t);
    url.searchParams.delete('token');
    window.history.replaceState(null, '', url.pathname + url.search + url.hash);
    return t;
  }
  return store.getItem(KEY);
}

export const saveToken = (t: string | null) => (t ? store.setItem(KEY, t) : store.removeItem(KEY));

export class AuthError extends Error {}

export async function api<T = any>(
  token: string,
  path: string,
  init: { method?: string; body?: unknown } = {},
): Promise<T> {
  const res = await fetch(path, {
    method: init.method ?? 'GET',
    headers: {
      authorization: `Bearer ${token}`,
      ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    body: init.body !== undefined ? JSON.stringify(init.body) : undefined,
  });
  if (res.status === 401) throw new AuthError('the master did not accept this token');
  const data = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(data?.error?.message ?? `${res.status} ${res.statusText}`);
  return data as T;
}

/** What changed: these jobs and lists, or (all) anything. */
export interface ChangeEvent {
  all: boolean;
  jobs?: string[];
  lists?: string[];
}

/**
 * Calls `onChange` with what the master reports changed (server-sent events). The stream's URL carries
 * a short-lived ticket, never the token; a dropped stream reconnects with a new ticket.
 */
export function subscribe(token: string, onChange: (e: ChangeEvent) => void, onState: (live: boolean) => void) {
  let es: EventSource | undefined;
  let stopped = false;
  let retry: ReturnType<typeof setTimeout> | undefined;
  const connect = async () => {
    try {
      const { ticket } = await api<{ ticket: string }>(token, '/api/v1/events/ticket');
      if (stopped) return;
      es = new EventSource(`/api/v1/events?ticket=${encodeURIComponent(ticket)}`);
      es.onmessage = (m) => {
        let e: ChangeEvent = { all: true };
        try {
          e = JSON.parse(m.data);
        } catch {
          /* an older master: a bare timestamp means anything */
        }
        onChange(typeof e === 'object' && e ? e : { all: true });
      };
      es.onopen = () => onState(true);
      es.onerror = () => {
        onState(false);
        es?.close();
        if (!stopped) retry = setTimeout(connect, 2000);
      };
    } catch {
      onState(false);
      if (!stopped) retry = setTimeout(connect, 2000);
    }
  };
  void connect();
  return () => {
    stopped = true;
    clearTimeout(retry);
    es?.close();
  };
}
