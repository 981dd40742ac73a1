// Files being served, opened once for every download of them in flight (common/content.ts).
import { type FileHandle, open } from 'node:fs/promises';

/** A file open for reading, shared by every download of it in flight. */
interface SharedFile {
  users: number;
  fh: Promise<FileHandle>;
}
const shared = new Map<string, SharedFile>();

/**
 * Downloads of one file in flight share one descriptor (reads name their position). A relay holds a
 * kept-alive connection for each of its endpoints: at 10,000 endpoints fetching one package, a
 * descriptor each as well passed the process's limit (EMFILE). Served files are named by their
 * digest; a file put in its place (another inode) is opened afresh. Counted when handed out, so a
 * download ending meanwhile cannot close it under the next one.
 */
export function openShared(path: string, version = `${Math.random()}`) {
  const key = `${path}\0${version}`;
  let f = shared.get(key);
  if (!f) {
    const opened = { users: 0, fh: open(path) };
    // A path that cannot be opened is tried afresh by the next download.
    opened.fh.catch(() => shared.get(key) === opened && shared.delete(key));
    shared.set(key, opened);
    f = opened;
  }
  const entry = f;
  entry.users++;
  let released = false;
  return {
    fh: entry.fh,
    release: async () => {
      if (released) return;
      released = true;
      if (--entry.users > 0) return;
      if (shared.get(key) === entry) shared.delete(key);
      await entry.fh.then(
        (fh) => fh.close(),
        () => undefined,
      );
    },
  };
}
