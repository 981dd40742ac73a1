// The master's HTTP API described as OpenAPI 3, generated from the routes' own zod schemas, served at
// GET /api/v1/openapi.json (no token: it holds no data, only the shapes).
import swagger from '@fastify/swagger';
import { jsonSchemaTransform } from 'fastify-type-provider-zod';
import type { App } from '../common/server.ts';

/** Registered before any route, so every route is seen. */
export async function describeApi(app: App) {
  await app.register(swagger, {
    openapi: {
      info: {
        title: 'Fanout master API',
        version: '1',
        description:
          'Admin routes take `Authorization: Bearer <admin or user token>`; relay routes a relay token. Errors are `{"error":{"code","message"}}` (docs/errors.md).',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
    transform: jsonSchemaTransform,
  });
}

export function apiDescriptionRoute(app: App) {
  app.get('/api/v1/openapi.json', async () => app.swagger());
}
