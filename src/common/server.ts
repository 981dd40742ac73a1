// What every daemon's HTTP server has: typed routes (zod), scopes with one auth hook each, error
// mapping through the error table, health, metrics, fault routes, and request time limits.
import { Server as TlsServer } from 'node:tls';
import Fastify, { type FastifyInstance, type FastifyRequest, LogController } from 'fastify';
import { serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import { collectDefaultMetrics, type Registry } from 'prom-client';
import { z } from 'zod';
import { errorBody, FanoutError } from '../protocol/errors.ts';
import { formatZodError } from '../protocol/types.ts';
import type { Principal } from './auth.ts';
import type { Faults } from './faults.ts';
import type { Logger } from './log.ts';
import { splitHostPort } from './net.ts';
import type { serverTls } from './tls.ts';

export type App = FastifyInstance<
  import('node:http').Server,
  import('node:http').IncomingMessage,
  import('node:http').ServerResponse,
  import('fastify').FastifyBaseLogger,
  ZodTypeProvider
>;

export type Authenticate = (req: FastifyRequest) => Promise<Principal>;

export interface ServerOptions {
  logger: Logger;
  registry: Registry;
  bodyLimit?: number;
  /** Called with each route as it is registered, with the scope it belongs to (route tests walk them). */
  onRoute?: (r: { method: string; url: string; scope: string }) => void;
  /** Serve HTTPS with these (common/tls.ts). */
  https?: ReturnType<typeof serverTls>;
}

export function createHttpServer(opts: ServerOptions): App {
  const app = Fastify({
    ...(opts.https ? { https: opts.https } : {}),
    loggerInstance: opts.logger,
    bodyLimit: opts.bodyLimit ?? 1024 * 1024,
    logController: new LogController({ disableRequestLogging: true }),
    // No child logger per request: at 10,000 waiting long-polls those are 10,000 loggers, for the rare
    // line a request logs (which names its request itself).
    childLoggerFactory: (logger) => logger,
    forceCloseConnections: true,
    // A client must send its headers within 10 s and may not stall a body for long.
    http: { headersTimeout: 10_000, requestTimeout: 15 * 60_000 },
    connectionTimeout: 60_000,
  }).withTypeProvider<ZodTypeProvider>() as unknown as App;
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  app.decorateRequest('principal', null as never);
  app.decorateRequest('auditTarget', null);
  // Event-loop delay sampled once a second, not every 10 ms: an idle daemon should sleep.
  collectDefaultMetrics({ register: opts.registry, eventLoopMonitoringPrecision: 1000 });
  app.addContentTypeParser('text/plain', { parseAs: 'string', bodyLimit: opts.bodyLimit }, (_req, body, done) =>
    done(null, body),
  );
  // Scopes name their routes in their own onRoute hook, which runs after this one: read at ready.
  const seen: { method: string | string[]; url: string; config?: unknown }[] = [];
  app.addHook('onRoute', (r) => void seen.push(r));
  app.addHook('onReady', async () => {
    for (const r of seen) {
      const scopeName = (r.config as { scope?: string } | undefined)?.scope ?? 'public';
      for (const method of Array.isArray(r.method) ? r.method : [r.method])
        if (method !== 'HEAD') opts.onRoute?.({ method, url: r.url, scope: scopeName });
    }
  });
  app.setNotFoundHandler((req, reply) => {
    const e = new FanoutError('FANOUT_ERR_NOT_FOUND', { method: req.method, url: req.url.split('?')[0] });
    reply.status(404).send(e.toJSON());
  });
  app.setErrorHandler((err, req, reply) => {
    // An error after a blob's headers were set (its file failed to open mid-way) is still JSON.
    reply.type('application/json; charset=utf-8');
    for (const h of ['content-length', 'content-range', 'accept-ranges']) reply.removeHeader(h);
    if (err instanceof FanoutError) return reply.status(err.statusCode).send(err.toJSON());
    if (err instanceof z.ZodError) {
      const list = formatZodError(err);
      return reply.status(400).send(errorBody('FANOUT_ERR_INPUT_INVALID', list.join('; '), list));
    }
    const e = err as { statusCode?: number; code?: string; message: string; validation?: unknown[] };
    if (e.validation) {
      const list = validationList(e);
      return reply.status(400).send(errorBody('FANOUT_ERR_INPUT_INVALID', list.join('; '), list));
    }
    if (e.code === 'FST_ERR_CTP_BODY_TOO_LARGE')
      return reply.status(413).send(new FanoutError('FANOUT_ERR_INPUT_TOO_LARGE', { detail: e.message }).toJSON());
    if (e.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE')
      return reply.status(415).send(errorBody('FANOUT_ERR_INPUT_MEDIA_TYPE', e.message));
    if (e.statusCode && e.statusCode < 500)
      return reply.status(e.statusCode).send(errorBody('FANOUT_ERR_INPUT_INVALID', e.message));
    req.log.error({ err, reqId: req.id, method: req.method, url: req.url }, 'request failed');
    return reply.status(500).send(new FanoutError('FANOUT_ERR_INTERNAL', { detail: e.message }).toJSON());
  });
  app.get('/healthz', async () => ({ ok: true }));
  app.get('/metrics', async (_req, reply) => reply.type(opts.registry.contentType).send(await opts.registry.metrics()));
  return app;
}

function validationList(e: { message: string; validation?: unknown[] }): string[] {
  const list = (e.validation ?? []) as {
    instancePath?: string;
    message?: string;
    params?: { issue?: { path?: unknown[] } };
  }[];
  const out = list.map((v) => {
    const path = v.instancePath?.replace(/^\//, '').replace(/\//g, '.') || '(root)';
    // zod's words for a number that did not parse ("received NaN") mean nothing to an operator.
    const message = v.message?.replace(/^Invalid input: expected (number|int), received NaN$/, 'not a number');
    return `${path}: ${message ?? 'invalid'}`;
  });
  return out.length ? out : [e.message];
}

/**
 * An encapsulated group of routes behind one authenticator: the token is checked in `onRequest`,
 * before any body is read, and the caller is `req.principal` in every route of the scope.
 */
export function scope(app: App, name: string, authenticate: Authenticate | null, routes: (s: App) => void) {
  app.register(async (s) => {
    s.addHook('onRoute', (r) => {
      r.config = { ...(r.config as object), scope: name } as typeof r.config;
    });
    if (authenticate)
      s.addHook('onRequest', async (req) => {
        req.principal = await authenticate(req);
      });
    routes(s as App);
  });
}

/** Fault injection routes (DESIGN §9), inside a daemon's admin scope. */
export function faultRoutes(s: App, faults: Faults) {
  const guard = () => {
    if (!faults.allowed) throw new FanoutError('FANOUT_ERR_FAULTS_DISABLED', {});
  };
  s.get('/admin/v1/faults', async () => (guard(), faults.list()));
  s.post(
    '/admin/v1/faults',
    { schema: { body: z.union([z.string(), z.record(z.string(), z.string())]) } },
    async (req) => {
      guard();
      try {
        faults.set(req.body);
      } catch (e) {
        throw new FanoutError('FANOUT_ERR_INPUT_INVALID', { detail: (e as Error).message });
      }
      return faults.list();
    },
  );
  s.delete('/admin/v1/faults', { schema: { querystring: z.object({ point: z.string().optional() }) } }, async (req) => {
    guard();
    faults.clear(req.query.point);
    return faults.list();
  });
}

export async function listen(app: App, listenAddr: string) {
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
  const scheme = (app.server as unknown) instanceof TlsServer ? 'https' : 'http';
  return `${scheme}://${host.includes(':') ? `[${host}]` : host}:${actual}`;
}
