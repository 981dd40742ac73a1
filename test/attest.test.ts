// The attestation right after an install (agent/attest.ts), on real files: a file the install hashed
// as it wrote it is not read again while its status is unchanged, and is whenever it may have changed.

import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstatSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { attest, type Hashed, treeFile } from '../src/agent/attest.ts';
import { type TreeEntry, treeHash } from '../src/protocol/tree.ts';
import { tempDir } from './helpers.ts';

const sha = (t: string) => createHash('sha256').update(t).digest('hex');

/** A version folder holding `menu.txt`, its signed tree beside it. */
function installed(text: string) {
  const root = tempDir('attest');
  const dir = join(root, 'menu', '1.0.0');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'menu.txt'), text, { mode: 0o644 });
  const entries: TreeEntry[] = [{ path: 'menu.txt', mode: 0o644, sha256: sha(text) }];
  writeFileSync(treeFile(root, { name: 'menu', version: '1.0.0' }), JSON.stringify(entries));
  return { root, dir, pkg: { name: 'menu', version: '1.0.0', tree: treeHash(entries) } };
}

/** What an install would have recorded, with `sha256` standing for the hash it took as it wrote. */
const recorded = (dir: string, sha256: string, since: number): Hashed => ({
  files: new Map([['menu.txt', { sha256, st: lstatSync(join(dir, 'menu.txt')) }]]),
  since,
});

describe('attestation after an install', () => {
  it('takes the hash taken while writing for a file unchanged since, written before the scripts began', async () => {
    const { root, dir, pkg } = installed('menu 1\n');
    const st = lstatSync(join(dir, 'menu.txt'));
    // The recorded hash is used, not the disk: a made-up one shows which was taken.
    const at = await attest(root, pkg, recorded(dir, sha('as written'), st.ctimeMs + 1));
    expect(at.ok).toBe(false);
    expect(at.problem).toMatch(/changed menu\.txt/);
    expect((await attest(root, pkg, recorded(dir, sha('menu 1\n'), st.ctimeMs + 1))).ok).toBe(true);
  });

  it('reads the file again when it was written in the tick the scripts began in', async () => {
    const { root, dir, pkg } = installed('menu 1\n');
    const st = lstatSync(join(dir, 'menu.txt'));
    const at = await attest(root, pkg, recorded(dir, sha('as written'), st.ctimeMs));
    expect(at).toMatchObject({ ok: true, tree: pkg.tree });
  });

  it('reads the file again when it changed in place, its size and times put back', async () => {
    const { root, dir, pkg } = installed('menu 1\n');
    const file = join(dir, 'menu.txt');
    const before = lstatSync(file);
    const hashed = recorded(dir, sha('menu 1\n'), before.ctimeMs + 1);
    await new Promise((r) => setTimeout(r, 20)); // past the clock tick the file was written in
    const ref = join(root, 'ref');
    execFileSync('touch', ['-r', file, ref]); // times to the nanosecond, as a script would keep them
    writeFileSync(file, 'menu 2\n');
    execFileSync('touch', ['-r', ref, file]);
    expect(lstatSync(file).mtimeMs).toBe(before.mtimeMs);
    const at = await attest(root, pkg, hashed);
    expect(at).toMatchObject({ ok: false, problem: expect.stringMatching(/changed menu\.txt/) });
  });
});
