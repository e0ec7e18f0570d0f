// InferenceClient: the same API on a worker thread; typed errors cross the boundary, aborts are forwarded and the
// main event loop keeps running during generation.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OmgError } from '../../src/errors.js';
import { InferenceClient } from '../../src/inference/client.js';

const TINY = fileURLToPath(new URL('../fixtures/tiny-random/', import.meta.url));
const image = new Uint8Array(readFileSync(`${TINY}golden-image.png`));
let client: InferenceClient;

beforeAll(async () => { client = await InferenceClient.start(TINY); });
afterAll(async () => { await client.dispose(); });

describe('InferenceClient', () => {
  it('answers on the worker thread, streams deltas, and leaves the event loop free', async () => {
    const chat = await client.conversation(image);
    let ticks = 0;
    const timer = setInterval(() => { ticks++; }, 1);
    let streamed = '';
    const answer = await chat.ask('Please segment the region1 <region>.', {
      prompts: [{ kind: 'box', x1: 20, y1: 5, x2: 40, y2: 25 }], onToken: (d) => { streamed += d; }, generation: { maxNewTokens: 16 },
    });
    clearInterval(timer);
    expect(streamed).toBe(answer.text); // the visible answer, tags removed
    expect(answer.segments[0]?.mask.data.length).toBe(45 * 30); // transferred, not detached
    expect(answer.segments[0]!.mask.area).toBe(answer.segments[0]!.mask.data.reduce((n, v) => n + v, 0));
    expect(ticks).toBeGreaterThan(3);
    expect(client.manifest.name).toBe('tiny-random');
    expect((await client.stats()).imageCache.entries).toBe(1);
  });

  it('rebuilds typed errors from the worker', async () => {
    const err = await client.conversation(new Uint8Array([1, 2, 3])).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OmgError);
    expect(err).toMatchObject({ code: 'OMG_ERR_IMAGE_DECODE' });
  });

  it('forwards an AbortSignal to the worker and cancels the turn', async () => {
    const chat = await client.conversation(image);
    const controller = new AbortController();
    // The aborted turn waits behind a running one, so the abort reaches the worker before it starts.
    const running = chat.ask('Describe the image.', { generation: { maxNewTokens: 16 } });
    const aborted = chat.ask('And the colours?', { signal: controller.signal, generation: { maxNewTokens: 16 } });
    controller.abort();
    await expect(aborted).rejects.toMatchObject({ code: 'OMG_ERR_CANCELLED' });
    await expect(running).resolves.toMatchObject({ text: expect.any(String) });
  });

  it('fails calls with a retryable error once its worker thread is gone, instead of leaving them pending', async () => {
    const doomed = await InferenceClient.start(TINY);
    // The thread dying under the client, as after a native crash.
    await (doomed as unknown as { worker: { terminate(): Promise<number> } }).worker.terminate();
    await expect(doomed.conversation(image)).rejects.toMatchObject({ code: 'OMG_ERR_INTERNAL', retryable: true });
  });
});
