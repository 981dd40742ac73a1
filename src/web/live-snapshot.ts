// The dashboard's data, live: everything once, then what each change event names (data.ts), with a
// full load again when events cannot get through.
import { useCallback, useEffect, useRef, useState } from 'react';
import { AuthError, type ChangeEvent, subscribe } from './api.ts';
import { changeQueue, mergeChanges } from './change-queue.ts';
import { fetchChange, load, type Snapshot } from './data.ts';

export function useLiveSnapshot(
  token: string | null,
  callbacks: { error: (message: string | null) => void; signedOut: (message: string) => void },
) {
  const [data, setData] = useState<Snapshot | null>(null);
  const [changes, setChanges] = useState(0);
  const [live, setLive] = useState(false);
  const on = useRef(callbacks);
  on.current = callbacks;
  const loading = useRef(false);
  const dataRef = useRef<Snapshot | null>(null);
  const liveRef = useRef(false);
  const again = useRef(false);
  /** Change events that came during a full load: its lists may be from before them. */
  const during = useRef<ChangeEvent[] | null>(null);
  const applyRef = useRef<(e: ChangeEvent) => void>(() => undefined);

  const refresh = useCallback(async () => {
    if (!token) return;
    if (loading.current) return void (again.current = true);
    loading.current = true;
    during.current = [];
    try {
      const all = await load(token);
      dataRef.current = all;
      setData(all);
      // What changed meanwhile is asked for again, after the load: only what those events name.
      const missed = during.current.filter((e) => !e.all);
      if (missed.length) applyRef.current(missed.reduce(mergeChanges));
      setChanges((n) => n + 1);
      on.current.error(null);
    } catch (e) {
      if (e instanceof AuthError) on.current.signedOut(e.message);
      else on.current.error((e as Error).message);
    } finally {
      loading.current = false;
      during.current = null;
      if (again.current) {
        again.current = false;
        void refresh();
      }
    }
  }, [token]);

  useEffect(() => {
    if (!token) return;
    void refresh();
    // One at a time, each patching what the dashboard holds when its answers arrive; those that come
    // meanwhile are merged into the next (change-queue.ts).
    const apply = changeQueue(async (e: ChangeEvent) => {
      try {
        const patch = await fetchChange(token, e, dataRef.current ?? undefined);
        const next = patch(dataRef.current!);
        dataRef.current = next;
        setData(next);
        if (e.lists?.includes('fleet')) setChanges((n) => n + 1);
      } catch {
        void refresh();
      }
    });
    applyRef.current = apply;
    const onChange = (e: ChangeEvent) => {
      during.current?.push(e);
      if (e.all || !dataRef.current) return void refresh();
      apply(e);
    };
    const stop = subscribe(token, onChange, (on) => ((liveRef.current = on), setLive(on)));
    // A safety net only while events cannot get through.
    const poll = setInterval(() => liveRef.current || void refresh(), 5000);
    return () => (stop(), clearInterval(poll));
  }, [token, refresh]);

  return { data, changes, live, refresh };
}
