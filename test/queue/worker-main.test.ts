// `npm run worker` as a real process: loads the tiny-random bundle, serves a turn from the Redis queue, and exits
// cleanly on SIGTERM. It runs in its own Redis database because the worker uses the production key prefix.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { createMetrics } from '../../src/metrics.js';
import { REDIS_PREFIX, RedisBlobStore } from '../../src/queue/blobs.js';
import { BullTurnQueue } from '../../src/queue/bullmq.js';
import { jobIdFor, type TurnJobV1 } from '../../src/queue/job.js';
import { redisTestUrl } from '../helpers/redis.js';
import { until } from './contract.js';

const url = new URL(redisTestUrl);
url.pathname = '/9';
const REDIS_URL = url.toString();
const root = fileURLToPath(new URL('../../', import.meta.url));
const tiny = fileURLToPath(new URL('../fixtures/tiny-random/', import.meta.url));

describe('npm run worker', () => {
  const redis = new Redis(REDIS_URL);
  beforeAll(() => redis.flushdb());
  afterAll(async () => {
    await redis.flushdb();
    await redis.quit();
  });

  it('serves a turn with the real bundle and stops cleanly on SIGTERM', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/queue/worker-main.ts'], {
      cwd: root,
      env: { ...process.env, REDIS_URL, MODEL_DIR: tiny, LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    try {
      // Starting means transpiling and loading the bundle on a worker thread: slow on a busy machine.
      await until(() => output.includes('worker ready') || child.exitCode !== null, 120_000);
      expect(output, output).toContain('worker ready');

      const config = loadConfig({ REDIS_URL, LOG_LEVEL: 'silent' });
      const queue = new BullTurnQueue(config, { logger: createLogger(config), metrics: createMetrics() });
      const blobs = new RedisBlobStore(redis, { prefix: REDIS_PREFIX, defaultTtlSec: 600 });
      const image = new Uint8Array(readFileSync(`${tiny}golden-image.png`));
      const hash = createHash('sha256').update(image).digest('hex');
      await blobs.put(hash, image);
      const job: TurnJobV1 = {
        v: 1, id: jobIdFor('test', 'worker-main'), conversationId: 'test:c:t', image: { hash, width: 45, height: 30 }, task: 'chat',
        text: 'Please segment the region2 <region>.', prompts: [{ kind: 'box', x1: 20, y1: 5, x2: 40, y2: 25 }], history: [],
        render: { legend: false },
      };
      await queue.enqueue(job);
      const result = await queue.wait(job.id);
      await queue.close();
      expect(result.text).toContain('Red circle');
      expect(result.segments).toHaveLength(1);
      expect(await blobs.get(result.overlay!.hash)).not.toBeNull();

      child.kill('SIGTERM');
      expect(await exited, output).toBe(0);
      expect(output).toContain('worker stopped');
    } finally {
      child.kill('SIGKILL');
    }
  }, 180_000);
});
