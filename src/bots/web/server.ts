// The local playground: one fastify app with the static page, the JSON API and the operations endpoints.
// Errors leave as { error: { code, message } } with the catalogue's user message; unknown ones are logged, never shown.
import multipart from '@fastify/multipart';
import Fastify, { type FastifyBaseLogger, type FastifyError, type FastifyInstance } from 'fastify';
import type { Logger } from '../../log.js';
import { omgError, isOmgError } from '../../errors.js';
import { registerApi, type ApiDeps } from './api.js';
import { toHttpError } from './http-errors.js';
import { registerOps, type OpsDeps } from './ops.js';
import { registerStatic } from './static.js';
import { Uploads } from './uploads.js';

export interface WebDeps extends Omit<ApiDeps, 'uploads'>, Partial<OpsDeps> {
  logger?: Logger;
}

/** Builds the playground app; `ops` is mounted too unless /healthz and /metrics are served on their own port. */
export async function buildWebServer(deps: WebDeps): Promise<FastifyInstance> {
  // pino's Logger is a FastifyBaseLogger; naming the base type keeps one FastifyInstance type across the app.
  const app = Fastify({
    loggerInstance: deps.logger as FastifyBaseLogger | undefined,
    bodyLimit: 64 * 1024,
    // A browser may hold a streaming answer open; shutting down must not wait for it.
    forceCloseConnections: true,
  });
  await app.register(multipart);
  app.setErrorHandler<FastifyError | Error>((err, req, reply) => {
    // fastify's own 4xx (bad JSON, wrong content type, body too large) are the client's mistakes, told as such.
    const status = isOmgError(err) ? undefined : (err as FastifyError).statusCode;
    const clientError = typeof status === 'number' && status < 500;
    const http = toHttpError(clientError ? omgError('OMG_ERR_BAD_REQUEST', { correction: `Bad request: ${err.message}.` }) : err);
    if (http.error.code === 'OMG_ERR_INTERNAL') req.log.error({ err }, 'request failed');
    return reply.code(http.status).send(http.body);
  });
  registerStatic(app);
  registerApi(app, { service: deps.service, limits: deps.limits, uploads: new Uploads() });
  if (deps.registry && deps.health) registerOps(app, { registry: deps.registry, health: deps.health });
  return app;
}
