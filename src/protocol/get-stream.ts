// A client's requests over node:http(s) (node-request.ts): content downloads read as a Node stream,
// and JSON calls for `fanout swarm`, where one process plays thousands of endpoints.
import type { Client } from './client.ts';
import { type NodeRequestOptions, nodeRequest, readText } from './node-request.ts';

type StreamOptions = Pick<NodeRequestOptions, 'headers' | 'signal' | 'idleMs'>;

/**
 * GET `path` from the client's current server; resolves once the status is 2xx with the body still
 * to read. `idleMs` bounds silence, not the whole transfer: a large file on a slow link may take long.
 */
export const getStream = (c: Client, path: string, o: StreamOptions = {}) =>
  nodeRequest(c, c.url(path), { ...o, headers: { authorization: `Bearer ${c.opts.token}`, ...o.headers } });

/** A JSON request and its JSON answer, on the client's current server without failover. */
export async function requestJson<T>(
  c: Client,
  method: string,
  path: string,
  o: StreamOptions & { body?: unknown } = {},
) {
  const res = await nodeRequest(c, c.url(path), {
    ...o,
    method,
    body: o.body === undefined ? undefined : JSON.stringify(o.body),
    headers: {
      authorization: `Bearer ${c.opts.token}`,
      ...(o.body === undefined ? {} : { 'content-type': 'application/json' }),
      ...o.headers,
    },
  });
  return JSON.parse(await readText(res)) as T;
}
