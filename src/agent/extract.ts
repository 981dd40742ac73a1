// Safe extraction: the whole archive is checked before anything is written.
import { mkdir } from 'node:fs/promises';
import { isAbsolute, normalize, sep } from 'node:path';
import * as tar from 'tar';

export class UnsafeArchiveError extends Error {
  override name = 'UnsafeArchiveError';
}

/** Refuses entries that escape the folder, links, devices and anything but files and folders. */
export async function checkArchive(file: string) {
  const problems: string[] = [];
  await tar.t({
    file,
    strict: true,
    onReadEntry: (e) => {
      const p = e.path;
      const n = normalize(p);
      if (isAbsolute(p) || n === '..' || n.startsWith('..' + sep) || n.split(sep).includes('..'))
        problems.push(`"${p}" escapes the package folder`);
      else if (e.type === 'SymbolicLink' || e.type === 'Link')
        problems.push(`"${p}" is a link (${e.type === 'Link' ? 'hard' : 'symbolic'}), which packages may not hold`);
      else if (e.type !== 'File' && e.type !== 'OldFile' && e.type !== 'Directory' && e.type !== 'ContiguousFile')
        problems.push(`"${p}" is a ${e.type} entry, which packages may not hold`);
      e.resume();
    },
  });
  if (problems.length) throw new UnsafeArchiveError(`unsafe archive refused: ${problems.join('; ')}`);
}

export async function extractSafely(file: string, into: string) {
  await checkArchive(file);
  await mkdir(into, { recursive: true });
  await tar.x({ file, cwd: into, strict: true, preservePaths: false, noChmod: false, preserveOwner: false });
}
