// The Redis that .ci/run starts (or one you start: redis-server --port 6390 --save '' --daemonize yes).
// Each test gets its own key prefix, as BullMQ's own tests use a fresh queue name, and removes its keys afterwards.
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';

export const redisTestUrl = process.env.REDIS_TEST_URL ?? 'redis://127.0.0.1:6390';

export function freshPrefix(): string {
  return `omgtest-${randomUUID().slice(0, 8)}`;
}

/** Deletes every key under a test prefix. */
export async function dropPrefix(prefix: string): Promise<void> {
  const redis = new Redis(redisTestUrl);
  try {
    let cursor = '0';
    do {
      const [next, found] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 500);
      if (found.length > 0) await redis.del(...found);
      cursor = next;
    } while (cursor !== '0');
  } finally {
    await redis.quit();
  }
}
