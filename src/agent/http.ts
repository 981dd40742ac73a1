// The agent's own HTTP surface: /healthz, /metrics and (with --allow-faults) fault injection. Plain
// node:http rather than the daemons' fastify: an endpoint runs this all day, so it stays small.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { Server as TlsServer } from 'node:tls';
import type { Registry } from 'prom-client';
import { sameSecret } from '../common/auth.ts';
import type { Faults } from '../common/faults.ts';
import { splitHostPort } from '../common/net.ts';
import type { serverTls } from '../common/tls.ts';
import { type ErrorCode, errorBody, FanoutError } from '../protocol/errors.ts';

const send = (res: ServerResponse, status: number, body: unknown, type = 'application/json; charset=utf-8') => {
  res.writeHead(status, { 'content-type': type });
  res.end(typeof body === 'string' ? body : JSON.stringify(body));
};

async function readJson(req: IncomingMessage, limit = 64 * 1024): Promise<unknown> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > limit) throw new FanoutError('FANOUT_ERR_INPUT_TOO_LARGE', { detail: `at most ${limit} bytes` });
    chunks.push(c as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (!text) return {};
  try {
    return (req.headers['content-type'] ?? '').startsWith('application/json') ? JSON.parse(text) : text;
  } catch (e) {
    throw new FanoutError('FANOUT_ERR_INPUT_INVALID', { detail: `body is not JSON: ${(e as Error).message}` });
  }
}

export function agentServer(o: {
  token: string;
  agentId: string;
  faults: Faults;
  registry: () => Promise<Registry>;
  tls?: ReturnType<typeof serverTls>;
}): Server {
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://agent');
    if (req.method === 'GET' && url.pathname === '/healthz') return send(res, 200, { ok: true });
    if (req.method === 'GET' && url.pathname === '/metrics') {
      const r = await o.registry();
      return send(res, 200, await r.metrics(), r.contentType);
    }
    if (url.pathname !== '/admin/v1/faults')
      throw new FanoutError('FANOUT_ERR_NOT_FOUND', { method: req.method ?? '', url: url.pathname });
    // The token is checked before the body is read.
    const h = req.headers.authorization;
    if (!h?.startsWith('Bearer ')) throw new FanoutError('FANOUT_ERR_AUTH_MISSING', {});
    if (!sameSecret(h.slice(7).trim(), o.token))
      throw new FanoutError('FANOUT_ERR_AUTH_FORBIDDEN', { needs: `agent ${o.agentId}'s token` });
    if (!o.faults.allowed) throw new FanoutError('FANOUT_ERR_FAULTS_DISABLED', {});
    if (req.method === 'POST') {
      const body = await readJson(req);
      try {
        o.faults.set(body as string | Record<string, string>);
      } catch (e) {
        throw new FanoutError('FANOUT_ERR_INPUT_INVALID', { detail: (e as Error).message });
      }
    } else if (req.method === 'DELETE') o.faults.clear(url.searchParams.get('point') ?? undefined);
    else if (req.method !== 'GET')
      throw new FanoutError('FANOUT_ERR_NOT_FOUND', { method: req.method ?? '', url: url.pathname });
    return send(res, 200, o.faults.list());
  };
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    handle(req, res).catch((e) => {
      const err =
        e instanceof FanoutError ? e : new FanoutError('FANOUT_ERR_INTERNAL', { detail: (e as Error).message });
      send(res, err.statusCode, errorBody(err.code as ErrorCode, err.message));
    });
  };
  const server: Server = o.tls ? createHttpsServer(o.tls, handler) : createServer(handler);
  server.headersTimeout = 10_000;
  server.requestTimeout = 60_000;
  return server;
}

export function listenPlain(server: Server, addr: string): Promise<string> {
  const [host, port] = splitHostPort(addr);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      const a = server.address();
      resolve(
        `${server instanceof TlsServer ? 'https' : 'http'}://${host}:${typeof a === 'object' && a ? a.port : port}`,
      );
    });
  });
}
