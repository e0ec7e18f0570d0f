import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { createMetrics } from '../../src/metrics.js';
import { BullTurnQueue } from '../../src/queue/bullmq.js';
import { MemoryTurnQueue } from '../../src/queue/memory.js';
import { createQueue } from '../../src/queue/queue.js';
import { redisTestUrl } from '../helpers/redis.js';
import { fakeTurn } from './fake-turn.js';

const deps = { logger: createLogger(loadConfig({ LOG_LEVEL: 'silent' })), metrics: createMetrics() };

describe('createQueue', () => {
  it('runs turns in process without REDIS_URL, and needs processTurn for that', async () => {
    const queue = createQueue(loadConfig({}), { ...deps, processTurn: fakeTurn().processTurn });
    expect(queue).toBeInstanceOf(MemoryTurnQueue);
    await queue.close();
    expect(() => createQueue(loadConfig({}), deps)).toThrow(/processTurn/);
  });

  it('uses BullMQ when REDIS_URL is set', async () => {
    // Its own database: this queue writes under the production key prefix.
    const url = new URL(redisTestUrl);
    url.pathname = '/8';
    const queue = createQueue(loadConfig({ REDIS_URL: url.toString() }), deps);
    expect(queue).toBeInstanceOf(BullTurnQueue);
    expect(await queue.depth()).toBe(0);
    await queue.close();
    const redis = new Redis(url.toString());
    await redis.flushdb();
    await redis.quit();
  });
});
