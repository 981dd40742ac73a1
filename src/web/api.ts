// The dashboard's access to the master's API: the token, JSON calls, and live change events.
const KEY = 'fanout.token';

export function initialToken(): string | null {
  const url = new URL(window.location.href);
  const t = url.searchParams.get('token');
  if (t) {
    localStorage.setItem(KEY, t);
    url.searchParams.delete('token');
    window.history.replaceState(null, '', url.pathname + url.search + url.hash);
    return t;
  }
  return localStorage.getItem(KEY);
}

export const saveToken = (t: string | null) => (t ? localStorage.setItem(KEY, t) : localStorage.removeItem(KEY));

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

/** Calls `onChange` whenever the master reports a change (server-sent events; reconnects by itself). */
export function subscribe(token: string, onChange: () => void, onState: (live: boolean) => void) {
  const es = new EventSource(`/api/v1/events?token=${encodeURIComponent(token)}`);
  es.onmessage = () => onChange();
  es.onopen = () => onState(true);
  es.onerror = () => onState(false);
  return () => es.close();
}
