// Wiring only: config -> logger and metrics -> stores, queue (and, without Redis, the model on a worker thread)
// -> TurnService -> the adapters whose settings are present (playground, Discord, Slack).
// `createCore` is shared with the CLI, which runs the same pipeline for one question.
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import Fastify, { type FastifyBaseLogger } from 'fastify';
import { registerOps } from './bots/web/ops.js';
import { buildWebServer } from './bots/web/server.js';
import { ConfigError, loadConfigFromEnvironment, type Config } from './config.js';
import { TurnService } from './conversation/service.js';
import { MemoryConversationStore, RedisConversationStore } from './conversation/store.js';
import { toOmgError, type OmgError } from './errors.js';
import { InferenceClient } from './inference/index.js';
import { createLogger, type Logger } from './log.js';
import { metrics as processMetrics, type Metrics } from './metrics.js';
import { MemoryBlobStore, REDIS_PREFIX, RedisBlobStore } from './queue/blobs.js';
import { createProcessor } from './queue/processor.js';
import { createQueue, type ProcessTurn, type TurnQueue } from './queue/queue.js';

const MIB = 1024 * 1024;
const MEMORY_CONVERSATIONS = 1000; // without Redis: conversations kept, least recently written dropped first

export interface Core {
  service: TurnService;
  queue: TurnQueue;
  /** Why the model could not be loaded (in-process mode): turns then fail with this error instead of crashing the process. */
  modelError: OmgError | null;
  health(): Promise<{ ok: boolean; [detail: string]: unknown }>;
  close(): Promise<void>;
}

/** Stores, queue and TurnService; without REDIS_URL also the model and an in-process worker. */
export async function createCore(config: Config, logger: Logger, metrics: Metrics = processMetrics): Promise<Core> {
  const redis = config.REDIS_URL ? new Redis(config.REDIS_URL) : null;
  // While Redis is away the client retries; report that in the log rather than as an unhandled error event.
  redis?.on('error', (err) => logger.error({ err }, 'redis error'));
  const blobs = redis
    ? new RedisBlobStore(redis, { prefix: REDIS_PREFIX, defaultTtlSec: config.CONVERSATION_TTL_S })
    : new MemoryBlobStore({ defaultTtlSec: config.CONVERSATION_TTL_S, maxBytes: 512 * MIB });
  const store = redis
    ? new RedisConversationStore(redis, { prefix: REDIS_PREFIX, ttlSec: config.CONVERSATION_TTL_S })
    : new MemoryConversationStore({ ttlSec: config.CONVERSATION_TTL_S, maxEntries: MEMORY_CONVERSATIONS });

  let model: InferenceClient | null = null;
  let modelError: OmgError | null = null;
  let processTurn: ProcessTurn | undefined;
  if (!redis) {
    try {
      model = await InferenceClient.start(config.MODEL_DIR, {
        provider: config.ORT_PROVIDER,
        threads: config.ORT_THREADS,
        imageCacheBytes: config.IMAGE_CACHE_MB * MIB,
        kvCacheBytes: config.KV_CACHE_MB * MIB,
        warn: (msg) => logger.warn(msg),
      });
      processTurn = createProcessor({ model, blobs, metrics, overlayTtlSec: config.CONVERSATION_TTL_S });
    } catch (err) {
      modelError = toOmgError(err);
      const failed = modelError;
      processTurn = async () => {
        throw failed;
      };
    }
  }
  const queue = createQueue(config, { logger, metrics, ...(processTurn ? { processTurn } : {}) });
  const service = new TurnService(config, { queue, blobs, store, logger });

  return {
    service,
    queue,
    modelError,
    async health() {
      const depth = await queue.depth();
      if (modelError) return { ok: false, queueDepth: depth, model: modelError.userMessage };
      return { ok: true, queueDepth: depth, model: model ? model.manifest.name : 'on workers' };
    },
    async close() {
      await queue.close();
      await model?.dispose();
      await redis?.quit();
    },
  };
}

async function main(): Promise<void> {
  let config: Config;
  try {
    config = loadConfigFromEnvironment();
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`${err.message}\nSee .env.example for every setting.\n`);
    process.exitCode = 1;
    return;
  }
  const log = createLogger(config);
  const core = await createCore(config, log);
  if (core.modelError) {
    // One clear line, then keep serving: the playground and /healthz say what is wrong instead of a restart loop.
    log.error({ modelDir: config.MODEL_DIR, reason: core.modelError.userMessage }, 'model not loaded: every turn will fail until MODEL_DIR points at a valid bundle');
  }

  const stops: (() => Promise<unknown>)[] = [];
  const adapters: string[] = [];
  const ops = { registry: processMetrics.registry, health: () => core.health() };
  // Operations first, so /healthz answers as soon as anything is up.
  if (config.METRICS_PORT !== undefined) {
    const opsServer = Fastify({ loggerInstance: log as FastifyBaseLogger });
    registerOps(opsServer, ops);
    await opsServer.listen({ host: config.HOST, port: config.METRICS_PORT });
    stops.push(() => opsServer.close());
  }
  if (config.WEB_ENABLED) {
    const web = await buildWebServer({
      service: core.service,
      limits: { maxBytes: config.MAX_IMAGE_BYTES, maxPixels: config.MAX_IMAGE_PIXELS },
      logger: log,
      ...(config.METRICS_PORT === undefined ? ops : {}),
    });
    await web.listen({ host: config.HOST, port: config.PORT });
    log.info(`playground: http://${config.HOST}:${config.PORT}/`);
    stops.push(() => web.close());
    adapters.push('playground');
  }
  // The chat SDKs are loaded only when their bot is configured.
  const deps = { config, service: core.service, log };
  if (config.DISCORD_TOKEN) {
    const { startDiscord } = await import('./bots/discord/index.js');
    const discord = await startDiscord(deps);
    if (discord) {
      stops.push(() => discord.stop());
      adapters.push('discord');
    }
  }
  if (config.SLACK_BOT_TOKEN) {
    const { startSlack } = await import('./bots/slack/index.js');
    const slack = await startSlack(deps);
    if (slack) {
      stops.push(() => slack.stop());
      adapters.push('slack');
    }
  }
  // Graceful shutdown: stop taking new messages, let the queue finish or hand back the current turn, release the model.
  const shutdown = async () => {
    for (const stop of stops.reverse()) await stop().catch((err: unknown) => log.error({ err }, 'shutdown step failed'));
    await core.close();
  };
  if (adapters.length === 0) {
    log.error('nothing to serve: WEB_ENABLED=false and no Discord or Slack bot started (see .env.example)');
    await shutdown();
    process.exitCode = 1;
    return;
  }
  log.info({ adapters }, 'started');
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      log.info({ signal }, 'shutting down');
      void shutdown();
    });
  }
}

// Run only as the entry point (`npm start`); the CLI imports createCore from here.
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main();
