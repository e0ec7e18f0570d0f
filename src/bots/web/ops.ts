// Operations endpoints, mounted on the playground or on a separate METRICS_PORT server: /healthz and /metrics.
import type { FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';

export interface Health {
  ok: boolean;
  [detail: string]: unknown;
}

export interface OpsDeps {
  registry: Registry;
  /** Readiness of the pieces behind the service (queue reachable, model loaded); 503 when not ok. */
  health: () => Promise<Health>;
}

export function registerOps(app: FastifyInstance, deps: OpsDeps): void {
  app.get('/healthz', async (_req, reply) => {
    const health = await deps.health().catch((err: unknown) => ({ ok: false, reason: err instanceof Error ? err.message : String(err) }));
    return reply.code(health.ok ? 200 : 503).send(health);
  });
  app.get('/metrics', async (_req, reply) => reply.type(deps.registry.contentType).send(await deps.registry.metrics()));
}
