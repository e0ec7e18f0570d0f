// Prometheus metrics. One named metric per question an operator asks: how deep is the queue, where does a turn
// spend its time, do the caches work, which errors happen. Served by the web adapter at /metrics.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export type CacheName = 'image' | 'kv' | 'messages' | (string & {});

export interface Metrics {
  registry: Registry;
  queueDepth: Gauge<never>;
  jobStageSeconds: Histogram<'stage'>;
  jobsTotal: Counter<'outcome'>;
  cacheRequests: Counter<'cache' | 'result'>;
  cacheBytes: Gauge<'cache'>;
  errorsTotal: Counter<'code'>;
}

/** A fresh set of metrics on its own registry (tests use one each; the service uses `metrics`). */
export function createMetrics(registry = new Registry()): Metrics {
  const registers = [registry];
  return {
    registry,
    queueDepth: new Gauge({ name: 'omg_queue_depth', help: 'Turn jobs waiting or running.', registers }),
    jobStageSeconds: new Histogram({
      name: 'omg_job_stage_seconds',
      help: 'Time per stage of a turn (queue wait, model stages, render, total).',
      labelNames: ['stage'],
      buckets: [0.005, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
      registers,
    }),
    jobsTotal: new Counter({ name: 'omg_jobs_total', help: 'Finished turn jobs by outcome.', labelNames: ['outcome'], registers }),
    cacheRequests: new Counter({
      name: 'omg_cache_requests_total',
      help: 'Cache look-ups by cache and result (hit or miss).',
      labelNames: ['cache', 'result'],
      registers,
    }),
    cacheBytes: new Gauge({ name: 'omg_cache_bytes', help: 'Bytes held per cache.', labelNames: ['cache'], registers }),
    errorsTotal: new Counter({ name: 'omg_errors_total', help: 'User-facing errors by code.', labelNames: ['code'], registers }),
  };
}

/** Records inference timings (ms per stage; keys ending in "Tokens" are counts, not times). */
export function observeTimings(m: Metrics, timings: Record<string, number>): void {
  for (const [stage, value] of Object.entries(timings)) {
    if (!stage.endsWith('Tokens') && Number.isFinite(value)) m.jobStageSeconds.observe({ stage }, value / 1000);
  }
}

export function recordCacheLookup(m: Metrics, cache: CacheName, hit: boolean, bytes: number): void {
  m.cacheRequests.inc({ cache, result: hit ? 'hit' : 'miss' });
  m.cacheBytes.set({ cache }, bytes);
}

/** The process-wide metrics, with Node's default process metrics on the same registry. */
export const metrics = createMetrics();
collectDefaultMetrics({ register: metrics.registry });
