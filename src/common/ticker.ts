// Work a daemon repeats on a timer: never two runs at once, and stopping waits for the run under
// way, so that it does not write to a database that is closing (its record would be lost).

export interface Ticker {
  /** No run starts after this; resolves once the one under way has ended. */
  stop(): Promise<void>;
}

export function every(ms: number, run: () => Promise<void>, onError: (err: unknown) => void): Ticker {
  let current: Promise<void> | undefined;
  const timer = setInterval(() => {
    if (current) return;
    current = run()
      .catch(onError)
      .finally(() => {
        current = undefined;
      });
  }, ms);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await current;
    },
  };
}
