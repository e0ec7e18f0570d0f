// Redis restarted under load: a private redis-server on a free loopback port (append-only file, fsync on every write, as a deployment that
// must not lose accepted jobs runs it) is killed while turns are queued and running, and started again on the
// same files. The service (createCore with REDIS_URL) and two model worker processes reconnect by themselves;
// every accepted turn must still be answered, and messages sent while Redis is down are answered once it is back.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import type { TurnReply } from '../../src/conversation/service.js';
import { createLogger } from '../../src/log.js';
import { createCore, type Core } from '../../src/main.js';
import { createMetrics } from '../../src/metrics.js';
import { freePort, startModelWorker, startRedis, stop, type Child } from './processes.js';

const TURNS = 20;
const LATE = 5; // sent while Redis is down

let dir: string;
let port: number;
let redis: Child | undefined;
let core: Core;
const workers: Child[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'omg-redis-'));
  port = await freePort();
  redis = await startRedis(port, dir);
  const REDIS_URL = `redis://127.0.0.1:${port}`;
  const config = loadConfig({ LOG_LEVEL: 'silent', REDIS_URL, WEB_ENABLED: 'false', MAX_QUEUE_DEPTH: '100' });
  core = await createCore(config, createLogger(config), createMetrics());
  // Each turn waits 300 ms before the model runs, so that the restart lands while turns are queued and running.
  for (let i = 0; i < 2; i++) workers.push(await startModelWorker({ REDIS_URL, TURN_DELAY_MS: '300' }));
});

afterAll(async () => {
  for (const w of workers) await stop(w, 'SIGKILL');
  await core?.close().catch(() => undefined);
  await stop(redis, 'SIGKILL');
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('Redis restarted under load', () => {
  it('reconnects the service and the workers, answers every accepted turn and the ones sent during the outage', async () => {
    const png = new Uint8Array(await readFile('test/fixtures/tiny-random/golden-image.png'));
    let done = 0;
    const turns: Promise<TurnReply>[] = [];
    const send = (i: number) =>
      turns.push(core.service.submit({
        platform: 'web', channel: 'load', thread: `t${i}`, eventId: `restart-${i}`, userId: `u${i}`, text: 'segment the red circle',
        image: { bytes: png }, onProgress: (ev) => void (ev.type === 'done' && done++),
      }));
    for (let i = 0; i < TURNS; i++) send(i);
    // Wait until every turn is accepted (queued) and a few are answered, then take Redis away for two seconds;
    // messages that arrive meanwhile wait for it.
    await until(() => done >= 3, 60_000);
    expect(done).toBeLessThan(TURNS);
    await stop(redis, 'SIGKILL');
    for (let i = TURNS; i < TURNS + LATE; i++) send(i);
    await sleep(2000);
    redis = await startRedis(port, dir);

    const results = await Promise.allSettled(turns);
    const failures = results.flatMap((r, i) => (r.status === 'rejected' ? [`t${i}: ${String(r.reason)}`] : []));
    expect(failures).toEqual([]);
    expect(results).toHaveLength(TURNS + LATE);
    for (const r of results) expect((r as PromiseFulfilledResult<TurnReply>).value.segments).toHaveLength(1);
    // Both workers are still alive and serving.
    for (const w of workers) expect(w.process.exitCode).toBeNull();
  }, 180_000);
});

async function until(check: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(20);
  }
}
