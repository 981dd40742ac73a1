import { createReadStream, existsSync } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as tar from 'tar';
import { z } from 'zod';
import { sha256File } from './digest.ts';
import { FanoutError } from './errors.ts';
import { formatZodError } from './types.ts';

export const Manifest = z.object({
  name: z
    .string()
    .regex(/^[a-z0-9][a-z0-9._-]*$/, 'package names are lower-case letters, digits, dot, dash, underscore'),
  version: z
    .string()
    .regex(/^[0-9A-Za-z][0-9A-Za-z.+_-]*$/, 'versions are letters, digits, dot, plus, dash, underscore'),
  install: z.object({ run: z.string().optional(), timeoutSec: z.number().positive().optional() }).default({}),
  description: z.string().optional(),
});
export type Manifest = z.infer<typeof Manifest>;

export function parseManifest(text: string, where: string): Manifest {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new FanoutError('FANOUT_ERR_PACKAGE_INVALID', {
      where,
      problem: `fanout.json is not JSON: ${(e as Error).message}`,
    });
  }
  const r = Manifest.safeParse(raw);
  if (!r.success)
    throw new FanoutError('FANOUT_ERR_PACKAGE_INVALID', {
      where,
      problem: `fanout.json is invalid: ${formatZodError(r.error).join('; ')}`,
    });
  return r.data;
}

/** Reads fanout.json out of a package archive (a file path or the bytes). */
export async function readManifest(source: string | Buffer, label?: string): Promise<Manifest> {
  let text: string | undefined;
  const parser = new tar.Parser({
    onReadEntry: (entry) => {
      if (entry.path.replace(/^\.\//, '') === 'fanout.json' && entry.type === 'File') {
        const chunks: Buffer[] = [];
        entry.on('data', (c: Buffer) => chunks.push(c));
        entry.on('end', () => (text = Buffer.concat(chunks).toString('utf8')));
      } else entry.resume();
    },
  });
  const where = label ?? (typeof source === 'string' ? source : 'package');
  try {
    await pipeline(typeof source === 'string' ? createReadStream(source) : Readable.from([source]), parser);
  } catch (e) {
    throw new FanoutError('FANOUT_ERR_PACKAGE_INVALID', {
      where,
      problem: `not a readable .tgz package: ${(e as Error).message}`,
    });
  }
  if (text === undefined)
    throw new FanoutError('FANOUT_ERR_PACKAGE_INVALID', {
      where,
      problem: 'no fanout.json at the root of the archive',
    });
  return parseManifest(text, where);
}

/** Packs a folder holding fanout.json into a .tgz (`fanout package build`). */
export async function buildPackage(dir: string, file: string) {
  const mfile = join(dir, 'fanout.json');
  if (!existsSync(mfile))
    throw new FanoutError('FANOUT_ERR_PACKAGE_INVALID', { where: dir, problem: 'no fanout.json in the folder' });
  const m = parseManifest(await readFile(mfile, 'utf8'), mfile);
  if (m.install.run && !existsSync(join(dir, m.install.run)))
    throw new FanoutError('FANOUT_ERR_PACKAGE_INVALID', {
      where: dir,
      problem: `install.run "${m.install.run}" is not a file in the folder`,
    });
  const entries = (await readdir(dir)).sort();
  await tar.c({ gzip: true, cwd: dir, file, portable: true, noMtime: true }, entries);
  return {
    name: m.name,
    version: m.version,
    file: resolve(file),
    digest: await sha256File(file),
    size: (await stat(file)).size,
  };
}
