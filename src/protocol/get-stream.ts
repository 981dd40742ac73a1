// Content downloads with a client's token and connections, read as a Node stream (node-request.ts).
import type { Client } from './client.ts';
import { type NodeRequestOptions, nodeRequest } from './node-request.ts';

type StreamOptions = Pick<NodeRequestOptions, 'headers' | 'signal' | 'idleMs'>;

/**
 * GET `path` from the client's current server; resolves once the status is 2xx with the body still
 * to read. `idleMs` bounds silence, not the whole transfer: a large file on a slow link may take long.
 */
export const getStream = (c: Client, path: string, o: StreamOptions = {}) =>
  nodeRequest(c, c.url(path), { ...o, headers: { authorization: `Bearer ${c.opts.token}`, ...o.headers } });
