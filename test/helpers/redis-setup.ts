// vitest globalSetup: makes `npm test` self-contained. When nothing answers at REDIS_TEST_URL (as .ci/run provides),
// it starts a throwaway redis-server there (loopback, no persistence) and stops it after the run.
import { spawn, type ChildProcess } from 'node:child_process';
import { Redis } from 'ioredis';
import { redisTestUrl } from './redis.js';

async function answers(url: string): Promise<boolean> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  redis.on('error', () => {}); // a refused connection is the answer here, reported by the return value
  try {
    await redis.connect();
    return (await redis.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    redis.disconnect();
  }
}

export default async function setup(): Promise<(() => void) | undefined> {
  if (await answers(redisTestUrl)) return undefined;
  const { hostname, port } = new URL(redisTestUrl);
  let server: ChildProcess;
  try {
    server = spawn('redis-server', ['--port', port || '6379', '--bind', hostname, '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.once('spawn', resolve);
    });
  } catch (err) {
    throw new Error(`no Redis at ${redisTestUrl} and redis-server could not be started (install redis-server or set REDIS_TEST_URL)`, { cause: err });
  }
  for (let i = 0; i < 50 && !(await answers(redisTestUrl)); i++) await new Promise((r) => setTimeout(r, 100));
  return () => void server.kill('SIGTERM');
}
