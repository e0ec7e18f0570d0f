import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { createMetrics } from '../../src/metrics.js';
import { BullTurnQueue, errorFromReason, startWorker, type TurnWorker } from '../../src/queue/bullmq.js';
import type { TurnJobV1 } from '../../src/queue/job.js';
import { dropPrefix, freshPrefix, redisTestUrl } from '../helpers/redis.js';
import { collect, queueContract, until } from './contract.js';
import { fakeTurn, turnJob } from './fake-turn.js';

const logger = createLogger(loadConfig({ LOG_LEVEL: 'silent' }));
const configFor = (opts: { attempts?: number; timeoutMs?: number; maxDepth?: number } = {}) =>
  loadConfig({
    REDIS_URL: redisTestUrl,
    JOB_ATTEMPTS: String(opts.attempts ?? 3),
    JOB_TIMEOUT_MS: String(opts.timeoutMs ?? 10_000),
    MAX_QUEUE_DEPTH: String(opts.maxDepth ?? 50),
  });

async function bullHarness(opts: { attempts?: number; timeoutMs?: number; maxDepth?: number } = {}, workerOpts = {}) {
  const prefix = freshPrefix();
  const config = configFor(opts);
  const fake = fakeTurn();
  const queue = new BullTurnQueue(config, { logger, metrics: createMetrics() }, { prefix, backoffMs: 50 });
  const worker = await startWorker(config, { processTurn: fake.processTurn, logger, metrics: createMetrics() }, { prefix, abandonAfterMs: 1000, ...workerOpts });
  return {
    queue, fake, prefix, config, worker,
    async close() {
      await worker.close();
      await queue.close();
      await dropPrefix(prefix);
    },
  };
}

describe('BullMQ queue (real Redis)', () => {
  queueContract((opts) => bullHarness(opts));

  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it.each([
    ['killed (SIGKILL)', 'SIGKILL'],
    ['hung (SIGSTOP)', 'SIGSTOP'],
  ] as const)('a job survives its worker process being %s: another worker runs it again', async (_name, signal) => {
    const prefix = freshPrefix();
    const config = configFor();
    const queue = new BullTurnQueue(config, { logger, metrics: createMetrics() }, { prefix });
    cleanups.push(async () => {
      await queue.close();
      await dropPrefix(prefix);
    });
    const child = spawnWorker(prefix);
    cleanups.push(async () => void child.kill('SIGKILL'));
    await until(() => ready.has(child), 30_000);

    await queue.enqueue(turnJob('survivor', { tokens: Array(40).fill('s'), tokenMs: 50 }));
    const events = collect(queue, 'survivor');
    await until(() => events.filter((e) => e.type === 'text').length >= 3);
    child.kill(signal); // a stopped process keeps its connections but renews no lock, like a hung one

    const fake = fakeTurn();
    const second = await startWorker(config, { processTurn: fake.processTurn, logger, metrics: createMetrics() }, {
      prefix, lockDurationMs: 1000, stalledIntervalMs: 300,
    });
    cleanups.push(() => second.close());
    await expect(queue.wait('survivor')).resolves.toMatchObject({ text: 's'.repeat(40) });
    expect(fake.calls.map((c) => [c.jobId, c.stopped])).toEqual([['survivor', 'done']]);
    expect(events.filter((e) => e.type === 'started')).toHaveLength(2); // the text starts over after a takeover
    expect(events.at(-1)?.type).toBe('done');
  });

  it('closing a worker finishes its current turn first', async () => {
    const h = await bullHarness();
    cleanups.push(() => h.close());
    await h.queue.enqueue(turnJob('finishing', { tokens: ['a', 'b', 'c', 'd'], tokenMs: 100 }));
    const events = collect(h.queue, 'finishing');
    await until(() => events.some((e) => e.type === 'text'));
    await h.worker.close();
    expect(h.fake.calls.map((c) => c.stopped)).toEqual(['done']);
    await expect(h.queue.wait('finishing')).resolves.toMatchObject({ text: 'abcd' });
  });

  it('fails a payload it cannot read without retrying', async () => {
    const h = await bullHarness({ attempts: 3 });
    cleanups.push(() => h.close());
    const outdated = { ...turnJob('outdated'), v: 2 } as unknown as TurnJobV1;
    await h.queue.enqueue(outdated);
    await expect(h.queue.wait('outdated')).rejects.toMatchObject({ code: 'OMG_ERR_JOB_INVALID' });
    expect(h.fake.calls).toHaveLength(0);
  });

  it('rejects wait() for an id it never saw', async () => {
    const h = await bullHarness();
    cleanups.push(() => h.close());
    await expect(h.queue.wait('turn-unknown')).rejects.toMatchObject({ code: 'OMG_ERR_INTERNAL' });
  });

  it('reads error codes back from failure reasons', () => {
    expect(errorFromReason('OMG_ERR_PROMPT_MISMATCH: 2 placeholders, 1 prompt')).toMatchObject({
      code: 'OMG_ERR_PROMPT_MISMATCH', userMessage: '2 placeholders, 1 prompt', retryable: false,
    });
    expect(errorFromReason('job stalled more than allowable limit')).toMatchObject({ code: 'OMG_ERR_INTERNAL' });
  });
});

const ready = new Set<ChildProcess>();

/** A worker in its own process (killed with SIGKILL by the test), short lock so a survivor takes over fast. */
function spawnWorker(prefix: string): ChildProcess {
  const script = fileURLToPath(new URL('./fixtures/worker.ts', import.meta.url));
  // One process (tsx as a loader, not its CLI wrapper), so SIGKILL kills the worker itself.
  const child = spawn(process.execPath, ['--import', 'tsx', script], {
    env: { ...process.env, REDIS_TEST_URL: redisTestUrl, TEST_PREFIX: prefix },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  child.stdout!.on('data', (chunk: Buffer) => {
    if (chunk.toString().includes('ready')) ready.add(child);
  });
  return child;
}
