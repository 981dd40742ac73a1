// The whole suite runs over TLS: one CA and server certificate for the run. The test process trusts
// the CA (NODE_EXTRA_CA_CERTS, read by each test worker at start); the fanout processes it starts do
// not inherit that: they get --ca (or FANOUT_CA) like any deployment.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeLabTls } from '../src/lab/ca.ts';

export default async function setup() {
  const tls = await makeLabTls(join(mkdtempSync(join(tmpdir(), 'fanout-tls-')), 'tls'));
  process.env.NODE_EXTRA_CA_CERTS = tls.ca;
  process.env.FANOUT_TEST_TLS = JSON.stringify(tls);
}
