// The behaviour both queues promise (src/queue/queue.ts), run against the in-process queue and against BullMQ.
import { afterEach, expect, it } from 'vitest';
import type { ProgressEvent } from '../../src/queue/job.js';
import type { TurnQueue } from '../../src/queue/queue.js';
import { fakeTurn, resultFor, turnJob } from './fake-turn.js';

export interface Harness {
  queue: TurnQueue;
  fake: ReturnType<typeof fakeTurn>;
  close(): Promise<void>;
}
export type MakeHarness = (opts: { attempts?: number; timeoutMs?: number; maxDepth?: number }) => Promise<Harness>;

export function collect(queue: TurnQueue, jobId: string): ProgressEvent[] {
  const events: ProgressEvent[] = [];
  queue.watch(jobId, (ev) => events.push(ev));
  return events;
}

export async function until(check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const types = (events: ProgressEvent[]) => events.map((e) => e.type);

export function queueContract(make: MakeHarness): void {
  let harness: Harness | undefined;
  const setup = async (opts: Parameters<MakeHarness>[0] = {}) => (harness = await make(opts));
  afterEach(async () => {
    await harness?.close();
    harness = undefined;
  });

  it('delivers progress events in order: queued positions, started, text, done', async () => {
    const { queue } = await setup();
    const tokens = ['Hel', 'lo', ' wor', 'ld'];
    await queue.enqueue(turnJob('slow', { tokens: ['a', 'b', 'c'], tokenMs: 150 }));
    await queue.enqueue(turnJob('middle', { tokens: ['x'], tokenMs: 150 }));
    const { position, duplicate } = await queue.enqueue(turnJob('last', { tokens, tokenMs: 20 }));
    expect(duplicate).toBe(false);
    expect(position).toBeGreaterThanOrEqual(2);
    const events = collect(queue, 'last');
    await expect(queue.wait('last')).resolves.toEqual(resultFor(tokens));
    const queued = events.filter((e) => e.type === 'queued').map((e) => (e as { position: number }).position);
    expect(queued.at(-1)).toBe(1);
    expect(queued).toEqual([...queued].sort((a, b) => b - a)); // only ever moves forward
    expect(types(events).filter((t) => t !== 'queued')).toEqual(['started', 'text', 'text', 'text', 'text', 'done']);
    expect(types(events).lastIndexOf('queued')).toBeLessThan(types(events).indexOf('started'));
    expect(events.flatMap((e) => (e.type === 'text' ? [e.delta] : [])).join('')).toBe('Hello world');
  });

  it('runs a duplicate event id once, before and after it finished', async () => {
    const { queue, fake } = await setup();
    expect((await queue.enqueue(turnJob('dup', { tokens: ['once'], tokenMs: 50 }))).duplicate).toBe(false);
    expect((await queue.enqueue(turnJob('dup', { tokens: ['twice'] }))).duplicate).toBe(true);
    const first = await queue.wait('dup');
    expect((await queue.enqueue(turnJob('dup', { tokens: ['thrice'] }))).duplicate).toBe(true);
    expect(await queue.wait('dup')).toEqual(first);
    expect(first.text).toBe('once');
    expect(fake.calls.filter((c) => c.jobId === 'dup')).toHaveLength(1);
    const late = collect(queue, 'dup');
    await until(() => late.length > 0);
    expect(late).toEqual([{ type: 'done', result: first }]);
  });

  it('cancels a queued job before it runs and a running job between tokens', async () => {
    const { queue, fake } = await setup();
    await queue.enqueue(turnJob('running', { tokens: Array(60).fill('t'), tokenMs: 30 }));
    await queue.enqueue(turnJob('queued', { tokens: ['never'] }));
    const runningEvents = collect(queue, 'running');
    const queuedEvents = collect(queue, 'queued');
    // Caught at once: they reject while the test is still awaiting other things.
    const runningResult = queue.wait('running').catch((err: unknown) => err);
    const queuedResult = queue.wait('queued').catch((err: unknown) => err);
    await until(() => runningEvents.filter((e) => e.type === 'text').length >= 2);

    expect(await queue.cancel('queued')).toBe(true);
    expect(await queuedResult).toMatchObject({ code: 'OMG_ERR_CANCELLED' });
    expect(await queue.cancel('running')).toBe(true);
    expect(await runningResult).toMatchObject({ code: 'OMG_ERR_CANCELLED' });

    expect(queuedEvents.at(-1)).toEqual({ type: 'cancelled' });
    expect(runningEvents.at(-1)).toEqual({ type: 'cancelled' });
    const call = fake.calls.find((c) => c.jobId === 'running')!;
    expect(call.stopped).toBe('aborted');
    expect(call.emitted).toBeLessThan(20);
    expect(fake.calls.some((c) => c.jobId === 'queued')).toBe(false);
    expect(await queue.cancel('running')).toBe(false); // already finished
    expect((await queue.enqueue(turnJob('queued'))).duplicate).toBe(true); // a cancelled id stays done
    // The queue goes on with the next job.
    await queue.enqueue(turnJob('after', { tokens: ['fine'] }));
    await expect(queue.wait('after')).resolves.toMatchObject({ text: 'fine' });
  });

  it('does not retry bad input but retries a transient failure with backoff', async () => {
    const { queue, fake } = await setup({ attempts: 3 });
    await queue.enqueue(turnJob('bad', { failures: ['bad-input', null] }));
    await queue.enqueue(turnJob('flaky', { failures: ['transient', null], tokens: ['second try'] }));
    const badEvents = collect(queue, 'bad');
    await expect(queue.wait('bad')).rejects.toMatchObject({ code: 'OMG_ERR_IMAGE_DECODE', retryable: false });
    await expect(queue.wait('flaky')).resolves.toMatchObject({ text: 'second try' });
    expect(fake.calls.filter((c) => c.jobId === 'bad')).toHaveLength(1);
    expect(fake.calls.filter((c) => c.jobId === 'flaky').map((c) => c.stopped)).toEqual(['failed', 'done']);
    await until(() => badEvents.some((e) => e.type === 'failed'));
    expect(badEvents.at(-1)).toEqual({
      type: 'failed', code: 'OMG_ERR_IMAGE_DECODE', message: 'The image could not be decoded. Please send a valid PNG, JPEG or WebP file.',
    });
  });

  it('gives up on a transient failure after the configured attempts', async () => {
    const { queue, fake } = await setup({ attempts: 2 });
    await queue.enqueue(turnJob('down', { failures: ['transient', 'transient', null] }));
    await expect(queue.wait('down')).rejects.toMatchObject({ code: 'OMG_ERR_INTERNAL' });
    expect(fake.calls.filter((c) => c.jobId === 'down')).toHaveLength(2);
  });

  it('stops a turn that runs past the timeout', async () => {
    const { queue, fake } = await setup({ timeoutMs: 300, attempts: 3 });
    await queue.enqueue(turnJob('long', { tokens: Array(100).fill('z'), tokenMs: 20 }));
    await expect(queue.wait('long')).rejects.toMatchObject({ code: 'OMG_ERR_TIMEOUT' });
    expect(fake.calls.filter((c) => c.jobId === 'long').map((c) => c.stopped)).toEqual(['aborted']);
  });

  it('refuses new jobs when full', async () => {
    const { queue } = await setup({ maxDepth: 2 });
    await queue.enqueue(turnJob('one', { tokens: ['a', 'b'], tokenMs: 100 }));
    await queue.enqueue(turnJob('two'));
    expect(await queue.depth()).toBe(2);
    await expect(queue.enqueue(turnJob('three'))).rejects.toMatchObject({ code: 'OMG_ERR_BUSY' });
    await queue.wait('two');
    expect(await queue.depth()).toBe(0);
  });
}
