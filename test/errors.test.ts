// docs/errors.md is pinned to the error table: a code added without its entry fails here
// (`UPDATE_DOCS=1 npx vitest run test/errors.test.ts` writes the table into the document).
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { errorTable, FanoutError, formatError } from '../src/protocol/errors.ts';

const DOC = join(import.meta.dirname, '..', 'docs', 'errors.md');
const START = '<!-- table: generated from src/protocol/errors.ts -->';
const END = '<!-- end of table -->';

const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n\s*/g, ' ');
const rendered = () =>
  [
    '| code | HTTP | message | when |',
    '|---|---|---|---|',
    ...Object.entries(errorTable).map(
      ([code, e]) => `| \`${code}\` | ${e.status} | ${cell(e.message)} | ${cell(e.when)} |`,
    ),
  ].join('\n');

describe('error codes', () => {
  it('docs/errors.md lists every code of the table, with its status, message and when', () => {
    const doc = readFileSync(DOC, 'utf8');
    const [before, rest] = doc.split(START);
    const after = rest?.split(END)[1];
    expect(after, `docs/errors.md needs the markers ${START} and ${END}`).toBeDefined();
    const fresh = `${before}${START}\n${rendered()}\n${END}${after}`;
    if (process.env.UPDATE_DOCS) writeFileSync(DOC, fresh);
    expect(doc).toBe(fresh);
    for (const code of Object.keys(errorTable)) expect(doc).toContain(`\`${code}\``);
  });

  it('every code is FANOUT_ERR_<AREA>[_<WHAT>] with a status, and messages fill their {names}', () => {
    for (const [code, e] of Object.entries(errorTable)) {
      expect(code).toMatch(/^FANOUT_ERR_[A-Z]+(_[A-Z]+)*$/);
      expect(e.status).toBeGreaterThanOrEqual(400);
      expect(e.when.length).toBeGreaterThan(10);
    }
    const err = new FanoutError('FANOUT_ERR_PACKAGE_UNKNOWN', { name: 'pos-app', version: '9.9.9' });
    expect(err.message).toBe('package pos-app@9.9.9 was never pushed: run `fanout package push FILE` first');
    expect(err.statusCode).toBe(404);
    expect(err.name).toBe('FanoutError');
    expect(err.toJSON()).toEqual({ error: { code: 'FANOUT_ERR_PACKAGE_UNKNOWN', message: err.message } });
    expect(formatError('FANOUT_ERR_JOB_UNKNOWN', { jobId: 'j-1', where: '' })).toBe('job "j-1" does not exist');
  });
});
