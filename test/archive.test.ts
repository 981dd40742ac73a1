// The archive rules (DESIGN §12), the same at build, push, relay and agent: each hostile archive
// is refused with what is wrong and where; `package build` names the offending path.

import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  linkSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import * as tar from 'tar';
import { describe, expect, it } from 'vitest';
import { inspectArchive } from '../src/protocol/archive.ts';
import { buildPackage, parseManifest } from '../src/protocol/package-file.ts';
import { runFanout, tempDir } from './helpers.ts';

function folder(files: Record<string, string> = { 'a.txt': 'a\n' }) {
  const dir = tempDir('arch');
  writeFileSync(join(dir, 'fanout.json'), JSON.stringify({ name: 'p', version: '1.0.0' }));
  for (const [f, c] of Object.entries(files)) writeFileSync(join(dir, f), c);
  return dir;
}
const pack = async (dir: string, opts: object = {}) => {
  const file = `${dir}.tgz`;
  await tar.c({ gzip: true, cwd: dir, file, ...opts }, ['.']);
  return file;
};

describe('archive rules', () => {
  it('takes a plain package and reads its fanout.json', async () => {
    const r = await inspectArchive(await pack(folder()));
    expect(r).toMatchObject({ files: 2, manifest: expect.stringContaining('"name":"p"') });
  });

  it('`package build` without -o writes NAME-VERSION.tgz in the working folder', async () => {
    const dir = folder();
    const here = tempDir('arch-out');
    const r = await runFanout(['package', 'build', dir, '--json'], { cwd: here });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ name: 'p', version: '1.0.0', file: join(here, 'p-1.0.0.tgz') });
    expect(readdirSync(here)).toEqual(['p-1.0.0.tgz']);
    expect((await inspectArchive(join(here, 'p-1.0.0.tgz'))).files).toBe(2);
  });

  it('refuses links, setuid and world-writable files, naming each', async () => {
    const dir = folder({ 'run.sh': '#!/bin/sh\n', 'open.txt': 'x' });
    symlinkSync('/etc/passwd', join(dir, 'passwd'));
    linkSync(join(dir, 'run.sh'), join(dir, 'again.sh'));
    chmodSync(join(dir, 'run.sh'), 0o4755);
    chmodSync(join(dir, 'open.txt'), 0o666);
    const err = await inspectArchive(await pack(dir)).catch((e) => e);
    const all = err.problems.join('\n');
    expect(all).toMatch(/"\.\/passwd" is a symbolic link/);
    expect(all).toMatch(/is a hard link/);
    expect(all).toMatch(/"\.\/(run|again)\.sh" has a setuid, setgid or sticky mode \(4755\)/);
    expect(all).toMatch(/"\.\/open\.txt" is world-writable \(666\)/);
    // `package build` refuses the folder before packing, with the paths.
    const built = await buildPackage(dir, join(dir, '..', 'out.tgz')).catch((e) => e);
    expect(built.code).toBe('FANOUT_ERR_PACKAGE_INVALID');
    expect(built.details.join('\n')).toMatch(/"passwd" is a symbolic link/);
    expect(built.details.join('\n')).toMatch(/"(run|again)\.sh" is a hard link \(2 names\)/);
    expect(built.details.join('\n')).toMatch(/"open\.txt" is world-writable/);
    // A folder without fanout.json, and one that is not there, each said as it is.
    const bare = folder();
    rmSync(join(bare, 'fanout.json'));
    await expect(buildPackage(bare, `${bare}.tgz`)).rejects.toThrow(/no fanout\.json in the folder/);
    await expect(buildPackage(join(bare, 'gone'), `${bare}.tgz`)).rejects.toThrow(/gone: no such folder/);
  });

  it('reads fanout.json strictly, naming every field that is wrong', () => {
    expect(parseManifest('{"name":"p","version":"1.0.0","install":{"run":"i.sh"},"extra":1}', 'x')).toEqual({
      name: 'p',
      version: '1.0.0',
      install: { run: 'i.sh' },
      uninstall: {},
    });
    const bad = (text: string) => {
      try {
        parseManifest(text, 'p.tgz');
      } catch (e) {
        return (e as { code: string; message: string }).message;
      }
      return 'accepted';
    };
    expect(bad('{"name":"P/../x","version":"1 0","install":{"timeoutSec":-1},"uninstall":"rm"}')).toMatch(
      /name: package names are.*version: versions are.*install\.timeoutSec: a positive number.*uninstall: an object/,
    );
    expect(bad('[1]')).toMatch(/must hold an object/);
    expect(bad('{"name":"p"')).toMatch(/not JSON/);
    expect(bad('{"version":"1"}')).toMatch(/name: a string is required/);
  });

  it('refuses an entry that escapes the folder', async () => {
    const dir = folder();
    const file = `${dir}.tgz`;
    await tar.c(
      {
        gzip: true,
        file,
        cwd: dir,
        preservePaths: true,
        onWriteEntry: (e: { path: string }) => void (e.path === 'a.txt' && (e.path = '../../evil.txt')),
      } as never,
      ['fanout.json', 'a.txt'],
    );
    await expect(inspectArchive(file)).rejects.toThrow(/"\.\.\/\.\.\/evil\.txt" escapes the package folder/);
  });

  it('extracting in the same pass writes nothing that breaks the rules, and exact modes', async () => {
    const dir = folder({ 'b.txt': 'b\n', 'run.sh': '#!/bin/sh\n' });
    mkdirSync(join(dir, 'ro'));
    writeFileSync(join(dir, 'ro', 'c.txt'), 'c\n');
    chmodSync(join(dir, 'run.sh'), 0o750);
    chmodSync(join(dir, 'ro'), 0o555);
    const into = join(tempDir('arch-x'), 'staging');
    await inspectArchive(await pack(dir), undefined, into);
    expect(readFileSync(join(into, 'ro', 'c.txt'), 'utf8')).toBe('c\n');
    expect(statSync(join(into, 'run.sh')).mode & 0o7777).toBe(0o750);
    expect(statSync(join(into, 'ro')).mode & 0o7777).toBe(0o555);

    // Many small files around a large one: every byte on disk as it was packed.
    const mixed = folder(
      Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`small-${i}.txt`, `small ${i}\n`.repeat(i + 1)])),
    );
    writeFileSync(join(mixed, 'blob.bin'), randomBytes(700 * 1024));
    const mixedInto = join(tempDir('arch-m'), 'staging');
    const got = await inspectArchive(await pack(mixed), undefined, mixedInto);
    for (const f of readdirSync(mixed))
      expect(readFileSync(join(mixedInto, f)), f).toEqual(readFileSync(join(mixed, f)));
    expect(got.entries.length).toBe(42);

    // A good entry first, then one that escapes: the escape is never written; the good one is in the
    // staging folder, which the installer removes on refusal.
    const bad = folder();
    const file = `${bad}.tgz`;
    await tar.c(
      {
        gzip: true,
        file,
        cwd: bad,
        preservePaths: true,
        onWriteEntry: (e: { path: string }) => void (e.path === 'a.txt' && (e.path = '../escaped.txt')),
      } as never,
      ['fanout.json', 'a.txt'],
    );
    const staging = join(tempDir('arch-y'), 'staging');
    await expect(inspectArchive(file, undefined, staging)).rejects.toThrow(/escapes the package folder/);
    expect(existsSync(join(staging, '..', 'escaped.txt'))).toBe(false);
    expect(readdirSync(staging)).toEqual(['fanout.json']);
  });

  it('an archive that breaks off in the middle of a file, as it is unpacked, leaves no file open', async () => {
    // An agent unpacks as it downloads: a relay can corrupt the stream in the middle of an entry.
    const dir = folder();
    writeFileSync(join(dir, 'big.bin'), randomBytes(4 << 20));
    const bytes = readFileSync(await pack(dir));
    const into = join(tempDir('arch-cut'), 'staging');
    const openUnder = () =>
      readdirSync('/proc/self/fd').filter((fd) => {
        try {
          return readlinkSync(`/proc/self/fd/${fd}`).startsWith(into);
        } catch {
          return false;
        }
      });
    const source = Readable.from([bytes.subarray(0, bytes.length >> 1), Buffer.alloc(64 * 1024, 7)]);
    await expect(inspectArchive(source, undefined, into)).rejects.toThrow(/not a readable \.tgz/);
    expect(openUnder()).toEqual([]);
  });

  it('refuses data smuggled after the end of the archive', async () => {
    const dir = folder();
    const plain = `${dir}.tar`;
    await tar.c({ file: plain, cwd: dir }, ['.']);
    const file = `${dir}.tgz`;
    writeFileSync(file, gzipSync(Buffer.concat([readFileSync(plain), Buffer.alloc(1024 * 1024, 7)])));
    await expect(inspectArchive(file)).rejects.toThrow(/bytes of data after the end of the archive/);
  });

  it('keeps to the file count and size limits', async () => {
    const dir = folder({ 'a.txt': 'x'.repeat(5000), 'b.txt': 'b', 'c.txt': 'c' });
    await expect(inspectArchive(await pack(dir), { maxFiles: 2, maxUnpackedBytes: 1e9 })).rejects.toThrow(
      /4 files; packages may hold at most 2/,
    );
    await expect(inspectArchive(await pack(dir), { maxFiles: 100, maxUnpackedBytes: 100 })).rejects.toThrow(
      /more than 100 bytes|at most 100/,
    );
    mkdirSync(join(dir, 'sub'));
    await expect(inspectArchive(await pack(dir), { maxFiles: 100, maxUnpackedBytes: 1e9 })).resolves.toMatchObject({
      files: 4,
    });
  });

  it('refuses what is not a .tgz at all', async () => {
    const file = join(tempDir('arch'), 'x.tgz');
    writeFileSync(file, 'not gzip');
    await expect(inspectArchive(file)).rejects.toThrow(/not a readable \.tgz/);
  });
});
