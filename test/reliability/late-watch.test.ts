// A caller that starts waiting for a job at any moment around its completion must get the job's result. Regression
// test for a race in BullTurnQueue: the job was read before it finished and its state after, which delivered 'done'
// with a null result (users saw "Something went wrong" under load although the job had completed).
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { createMetrics } from '../../src/metrics.js';
import { BullTurnQueue, startWorker, type TurnWorker } from '../../src/queue/bullmq.js';
import { dropPrefix, freshPrefix, redisTestUrl } from '../helpers/redis.js';
import { fakeTurn, resultFor, turnJob } from '../queue/fake-turn.js';

const JOBS = 150;
const config = loadConfig({ REDIS_URL: redisTestUrl, LOG_LEVEL: 'silent', MAX_QUEUE_DEPTH: String(JOBS) });
const logger = createLogger(config);
const prefix = freshPrefix();
let queue: BullTurnQueue;
let workers: TurnWorker[];

beforeAll(async () => {
  queue = new BullTurnQueue(config, { logger, metrics: createMetrics() }, { prefix });
  const { processTurn } = fakeTurn(); // TEST DOUBLE: instant turns, so completions are dense
  workers = await Promise.all([0, 1].map(() => startWorker(config, { processTurn, logger, metrics: createMetrics() }, { prefix })));
});
afterAll(async () => {
  for (const w of workers) await w.close();
  await queue.close();
  await dropPrefix(prefix);
});

describe('waiting for a job around its completion (real Redis)', () => {
  it(`resolves with the result for each of ${JOBS} jobs, whenever the wait starts`, async () => {
    const waits: Promise<unknown>[] = [];
    for (let i = 0; i < JOBS; i++) {
      const job = turnJob(`late-${i}`, { tokens: ['a', 'b'] });
      await queue.enqueue(job);
      waits.push(sleep(i % 5).then(() => queue.wait(job.id)));
    }
    const results = await Promise.all(waits);
    expect(results.filter((r) => r === null || r === undefined)).toHaveLength(0);
    for (const r of results) expect(r).toEqual(resultFor(['a', 'b']));
  });
});
