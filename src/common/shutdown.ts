// How a daemon process ends: on SIGTERM or SIGINT it finishes or checkpoints its work, then exits 0.
/** Stop on SIGTERM/SIGINT: run the cleanup once, then exit 0. Only the process entry points use it. */
export function onShutdown(fn: () => Promise<void>) {
  let stopping = false;
  const handler = async () => {
    if (stopping) return;
    stopping = true;
    try {
      await fn();
    } finally {
      process.exit(0);
    }
  };
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
}
