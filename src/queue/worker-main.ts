// `npm run worker`: a worker process for the Redis deployment. It loads the bundle once, serves turn jobs one at a
// time, and on SIGTERM/SIGINT finishes the current turn before it exits. Run as many as you like, on any machine
// that reaches the same Redis.
import { createServer } from 'node:http';
import { Redis } from 'ioredis';
import { ConfigError, loadConfigFromEnvironment } from '../config.js';
import { InferenceClient } from '../inference/index.js';
import { createLogger } from '../log.js';
import { metrics } from '../metrics.js';
import { REDIS_PREFIX, RedisBlobStore } from './blobs.js';
import { startWorker } from './bullmq.js';
import { createProcessor } from './processor.js';

const MiB = 1024 * 1024;

function loadConfigOrExit() {
  try {
    return loadConfigFromEnvironment();
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`${err.message}\n`);
    process.exit(1);
  }
}

const config = loadConfigOrExit();
const logger = createLogger(config);
if (!config.REDIS_URL) {
  logger.fatal('npm run worker serves the Redis queue: set REDIS_URL (without it, npm start runs turns in process)');
  process.exit(1);
}

const modelError = { reason: '' }; // why the model could not be loaded, for /healthz
const model = await InferenceClient.start(config.MODEL_DIR, {
  provider: config.ORT_PROVIDER,
  ...(config.ORT_THREADS > 0 ? { threads: config.ORT_THREADS } : {}),
  imageCacheBytes: config.IMAGE_CACHE_MB * MiB,
  kvCacheBytes: config.KV_CACHE_MB * MiB,
  warn: (msg) => logger.warn(msg),
}).catch((err: unknown) => {
  // Exiting would only have a supervisor restart the worker into the same failure, over and over: say why once,
  // then stay up without taking jobs (/healthz answers 503 with the reason) until stopped.
  logger.fatal({ err, model: config.MODEL_DIR }, 'could not load the model; this worker takes no jobs until it is restarted with a working bundle');
  modelError.reason = err instanceof Error ? err.message : String(err);
  return null;
});

// Without a model nothing else holds the process open; this timer keeps it up (and unhealthy) until a signal.
const idle = model ? null : setInterval(() => undefined, 60_000);
let redis: Redis | null = null;
let worker: Awaited<ReturnType<typeof startWorker>> | null = null;
if (model) {
  logger.info({ model: config.MODEL_DIR, provider: model.provider }, 'model loaded');
  redis = new Redis(config.REDIS_URL);
  redis.on('error', (err) => logger.error({ err }, 'redis error'));
  const blobs = new RedisBlobStore(redis, { prefix: REDIS_PREFIX, defaultTtlSec: config.CONVERSATION_TTL_S });
  const processTurn = createProcessor({ model, blobs, metrics, overlayTtlSec: config.CONVERSATION_TTL_S });
  worker = await startWorker(config, { processTurn, logger, metrics });
  logger.info('worker ready');
}

// /metrics and /healthz of this worker, when a port is configured.
const server = config.METRICS_PORT
  ? createServer((req, res) => {
      if (req.url === '/metrics') {
        void metrics.registry.metrics().then((text) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text));
      } else if (req.url === '/healthz') {
        const body = model ? { ok: true } : { ok: false, model: modelError.reason };
        res.writeHead(model ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      } else {
        res.writeHead(404).end();
      }
    }).listen(config.METRICS_PORT, config.HOST)
  : null;

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  logger.info({ signal }, 'finishing the current turn, then exiting');
  if (idle) clearInterval(idle);
  await worker?.close();
  server?.close();
  await model?.dispose();
  await redis?.quit();
  logger.info('worker stopped');
}
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => {
    shutdown(signal).then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  });
}
