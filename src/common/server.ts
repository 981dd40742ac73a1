// What every daemon's HTTP server has: error mapping, health, metrics, fault routes, bearer tokens.
import Fastify, { type FastifyInstance, type FastifyRequest, LogController } from 'fastify';
import { collectDefaultMetrics, type Registry } from 'prom-client';
import { ZodError } from 'zod';
import { FanoutError } from '../protocol/errors.ts';
import { formatZodError } from '../protocol/types.ts';
import type { Faults } from './faults.ts';
import type { Logger } from './log.ts';

export function createHttpServer(opts: {
  logger: Logger;
  bodyLimit?: number;
  registry: Registry;
  faults?: Faults;
  adminAuth?: (req: FastifyRequest) => void | Promise<void>;
}): FastifyInstance {
  const app: FastifyInstance = Fastify({
    loggerInstance: opts.logger,
    bodyLimit: opts.bodyLimit ?? 8 * 1024 * 1024,
    logController: new LogController({ disableRequestLogging: true }),
    forceCloseConnections: true,
  }) as unknown as FastifyInstance;
  collectDefaultMetrics({ register: opts.registry });
  app.addContentTypeParser('text/plain', { parseAs: 'string' }, (_req, body, done) => done(null, body));
  app.setErrorHandler((err, req, reply) => {
    if (err instanceof FanoutError) return reply.status(err.statusCode).send(err.toJSON());
    if (err instanceof ZodError)
      return reply.status(400).send({
        error: {
          code: 'FANOUT_ERR_INPUT_INVALID',
          message: formatZodError(err).join('; '),
          details: formatZodError(err),
        },
      });
    const e = err as { statusCode?: number; code?: string; message: string };
    if (e.statusCode && e.statusCode < 500)
      return reply.status(e.statusCode).send({
        error: {
          code: e.code === 'FST_ERR_CTP_BODY_TOO_LARGE' ? 'FANOUT_ERR_INPUT_TOO_LARGE' : 'FANOUT_ERR_INPUT_INVALID',
          message: e.message,
        },
      });
    req.log.error({ err }, 'request failed');
    return reply.status(500).send({ error: { code: 'FANOUT_ERR_INTERNAL', message: e.message } });
  });
  app.get('/healthz', async () => ({ ok: true }));
  app.get('/metrics', async (_req, reply) => reply.type(opts.registry.contentType).send(await opts.registry.metrics()));
  if (opts.faults && opts.adminAuth) {
    const faults = opts.faults;
    const guard = async (req: FastifyRequest) => {
      await opts.adminAuth!(req);
      if (!faults.allowed)
        throw new FanoutError(
          'FANOUT_ERR_FAULTS_DISABLED',
          'fault injection is off: start the daemon with --allow-faults',
        );
    };
    app.get('/admin/v1/faults', async (req) => (await guard(req), faults.list()));
    app.post('/admin/v1/faults', async (req) => {
      await guard(req);
      const body = req.body as Record<string, string> | string;
      try {
        faults.set(body);
      } catch (e) {
        throw new FanoutError('FANOUT_ERR_INPUT_INVALID', (e as Error).message);
      }
      return faults.list();
    });
    app.delete(
      '/admin/v1/faults',
      async (req) => (await guard(req), faults.clear((req.query as { point?: string }).point), faults.list()),
    );
  }
  return app;
}

/** An admin check for daemons whose admin is one token (relay: DATA/admin.token; agent: its device token). */
export const requireToken = (token: string, what: string) => (req: FastifyRequest) => {
  if (bearer(req) !== token) throw new FanoutError('FANOUT_ERR_AUTH_FORBIDDEN', `this needs ${what}`);
};

export function bearer(req: FastifyRequest): string {
  const h = req.headers.authorization;
  const q = (req.query as { token?: string } | undefined)?.token;
  if (h?.startsWith('Bearer ')) return h.slice(7).trim();
  if (q) return q;
  throw new FanoutError('FANOUT_ERR_AUTH_MISSING', 'missing token: send "Authorization: Bearer <token>"');
}

export async function listen(app: FastifyInstance, listenAddr: string) {
  const [host, port] = splitHostPort(listenAddr);
  try {
    await app.listen({ host, port });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EADDRINUSE')
      throw new Error(`${host}:${port} is already in use: stop what holds it, or choose another address with --listen`);
    throw e;
  }
  const addr = app.server.address();
  const actual = typeof addr === 'object' && addr ? addr.port : port;
  const url = `http://${host}:${actual}`;
  process.stdout.write(`listening on ${url}\n`);
  return url;
}

export function splitHostPort(s: string): [string, number] {
  const i = s.lastIndexOf(':');
  if (i < 0) return ['127.0.0.1', Number(s)];
  return [s.slice(0, i) || '127.0.0.1', Number(s.slice(i + 1))];
}

/** Stop on SIGTERM/SIGINT: run the cleanup once, then exit 0. */
export function onShutdown(fn: () => Promise<void>) {
  let stopping = false;
  const handler = async () => {
    if (stopping) return;
    stopping = true;
    try {
      await fn();
    } finally {
      process.exit(0);
    }
  };
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
}
