import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { createMetrics } from '../../src/metrics.js';
import { MemoryTurnQueue } from '../../src/queue/memory.js';
import { queueContract } from './contract.js';
import { fakeTurn, turnJob } from './fake-turn.js';

const logger = createLogger(loadConfig({ LOG_LEVEL: 'silent' }));

function memoryQueue(opts: { attempts?: number; timeoutMs?: number; maxDepth?: number } = {}) {
  const fake = fakeTurn();
  const queue = new MemoryTurnQueue(
    { maxDepth: opts.maxDepth ?? 50, timeoutMs: opts.timeoutMs ?? 10_000, attempts: opts.attempts ?? 3, backoffMs: 20, abandonAfterMs: 1000 },
    { processTurn: fake.processTurn, logger, metrics: createMetrics() },
  );
  return { queue, fake, close: () => queue.close() };
}

describe('in-process queue', () => {
  queueContract(async (opts) => memoryQueue(opts));

  it('on close, cancels waiting jobs and lets the running one finish', async () => {
    const { queue } = memoryQueue();
    await queue.enqueue(turnJob('current', { tokens: ['a', 'b'], tokenMs: 50 }));
    await queue.enqueue(turnJob('waiting'));
    const current = queue.wait('current');
    const waiting = queue.wait('waiting').catch((err: unknown) => err);
    await new Promise((resolve) => setTimeout(resolve, 20));
    await queue.close();
    await expect(current).resolves.toMatchObject({ text: 'ab' });
    expect(await waiting).toMatchObject({ code: 'OMG_ERR_CANCELLED' });
  });

  it('moves on from a turn that ignores the abort after the grace period', async () => {
    const { queue, fake } = memoryQueue({ timeoutMs: 100 });
    await queue.enqueue(turnJob('deaf', { tokens: Array(200).fill('d'), tokenMs: 20, deaf: true }));
    await queue.enqueue(turnJob('next'));
    await expect(queue.wait('deaf')).rejects.toMatchObject({ code: 'OMG_ERR_TIMEOUT' });
    await expect(queue.wait('next')).resolves.toMatchObject({ text: 'ok' });
    expect(fake.calls.find((c) => c.jobId === 'deaf')!.stopped).toBe('running');
  });
});
