// The service over the real in-process queue and real stores; only the model is replaced by a scripted processTurn
// (the real processor is tested against the tiny-random bundle in test/queue).
import { Redis } from 'ioredis';
import { pino } from 'pino';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { TurnService, type SubmitInput } from '../../src/conversation/service.js';
import { MemoryConversationStore, RedisConversationStore, type ConversationStore } from '../../src/conversation/store.js';
import { OmgError, omgError } from '../../src/errors.js';
import { createMetrics } from '../../src/metrics.js';
import { MemoryBlobStore, RedisBlobStore, type BlobStore } from '../../src/queue/blobs.js';
import type { ProgressEvent, TurnJobV1, TurnResultV1 } from '../../src/queue/job.js';
import { MemoryTurnQueue } from '../../src/queue/memory.js';
import type { ProcessTurn } from '../../src/queue/queue.js';
import { sha256 } from '../../src/conversation/image.js';
import { encode } from '../../src/render/rle.js';
import { dropPrefix, freshPrefix, redisTestUrl } from '../helpers/redis.js';

const W = 8;
const H = 6;
const config = { MAX_IMAGE_BYTES: 100_000, MAX_IMAGE_PIXELS: 10_000, CONVERSATION_TTL_S: 600 };
const logger = pino({ level: 'silent' });
const image = new Uint8Array(await sharp({ create: { width: W, height: H, channels: 3, background: '#204060' } }).png().toBuffer());

/** A mask of the left `cols` columns. */
const leftColumns = (cols: number) => encode({ width: W, height: H, data: Uint8Array.from({ length: W * H }, (_, i) => (i % W < cols ? 1 : 0)) });

/**
 * Answers like the model would: one segment per "segment" question (an empty one for a cat, which the image lacks),
 * two for everything; waits while `gate` is held.
 */
function scriptedModel(blobs: BlobStore, gate?: Promise<void>) {
  const jobs: TurnJobV1[] = [];
  const processTurn: ProcessTurn = async (job, { signal, emit }) => {
    jobs.push(job);
    await gate;
    if (signal.aborted) throw signal.reason;
    if (job.text.includes('explode')) throw omgError('OMG_ERR_PROMPT_MISMATCH', { placeholders: 1, prompts: 0 });
    const seg = (phrase: string, cols: number, span: [number, number] | null, label?: string) => ({
      phrase, span, bbox: [0, 0, cols, H] as [number, number, number, number], area: cols * H, score: 0.9, rle: leftColumns(cols),
      ...(label ? { label } : {}),
    });
    const overlay = new Uint8Array([1, 2, 3, jobs.length]);
    await blobs.put(sha256(overlay), overlay);
    let result: Omit<TurnResultV1, 'overlay' | 'timings' | 'usage' | 'v'>;
    if (job.task === 'everything') {
      result = { text: '', raw: '', segments: [seg('', 2, null, 'sky'), seg('', 5, null, 'grass')] };
    } else if (job.text.startsWith('Please segment the cat')) {
      result = { text: 'The cat.', raw: '<p> The cat </p> [SEG].<|im_end|>', segments: [seg('The cat', 0, [0, 7])] };
    } else if (job.text.startsWith('Please segment')) {
      result = { text: 'The dog.', raw: '<p> The dog </p> [SEG].<|im_end|>', segments: [seg('The dog', 3, [0, 7])] };
    } else {
      result = { text: 'A brown dog.', raw: 'A brown dog.<|im_end|>', segments: [] };
    }
    emit({ type: 'text', delta: result.text });
    return { v: 1, ...result, overlay: { hash: sha256(overlay), mime: 'image/png', bytes: 4 }, timings: { decode: 1 }, usage: { promptTokens: 1, newTokens: 1, cachedTokens: 0 } };
  };
  return { jobs, processTurn };
}

function setup(opts: { store?: ConversationStore; blobs?: BlobStore; gate?: Promise<void>; maxDepth?: number } = {}) {
  const blobs = opts.blobs ?? new MemoryBlobStore({ defaultTtlSec: 600, maxBytes: 10_000_000 });
  const store = opts.store ?? new MemoryConversationStore({ ttlSec: 600, maxEntries: 100 });
  const model = scriptedModel(blobs, opts.gate);
  const queue = new MemoryTurnQueue(
    { maxDepth: opts.maxDepth ?? 5, timeoutMs: 5_000, attempts: 1 },
    { processTurn: model.processTurn, logger, metrics: createMetrics() },
  );
  const service = new TurnService(config, { queue, blobs, store, logger });
  return { service, model, store, blobs, queue };
}

const base = { platform: 'discord' as const, channel: 'c1', thread: 't1', userId: 'u1' };
const ask = (eventId: string, text: string, extra: Partial<SubmitInput> = {}): SubmitInput => ({ ...base, eventId, text, ...extra });

async function refusal(p: Promise<unknown>): Promise<OmgError> {
  const err = await p.then(() => null, (e: unknown) => e);
  expect(err).toBeInstanceOf(OmgError);
  return err as OmgError;
}

describe('TurnService', () => {
  it('runs turns, numbers their masks and resolves "#n" to a stored mask with the history', async () => {
    const { service, model } = setup();
    const events: ProgressEvent['type'][] = [];
    const first = await service.submit(ask('e1', 'segment the dog', { image: { bytes: image }, onProgress: (ev) => events.push(ev.type) }));
    expect(model.jobs[0]).toMatchObject({ task: 'chat', text: 'Please segment the dog in this image.', prompts: [], history: [], image: { width: W, height: H }, render: { firstRegion: 1 } });
    expect(events).toEqual(['queued', 'started', 'text', 'done']);
    expect(first.text).toBe('The dog.');
    expect(first.segments).toEqual([expect.objectContaining({ n: 1, phrase: 'The dog', span: [0, 7], colour: expect.objectContaining({ hex: '#E69F00' }) })]);
    expect(first.overlay?.bytes).toEqual(new Uint8Array([1, 2, 3, 1]));

    const everything = await service.submit(ask('e2', 'segment everything'));
    expect(model.jobs[1]).toMatchObject({ task: 'everything', render: { legend: true, firstRegion: 2 } });
    expect(everything.segments.map((s) => [s.n, s.label, s.colour.name])).toEqual([[2, 'sky', 'sky blue'], [3, 'grass', 'bluish green']]);

    await service.submit(ask('e3', 'describe #3'));
    expect(model.jobs[2]!.text).toBe('Can you provide me with a detailed description of the region in the picture marked by region1 <region>?');
    expect(model.jobs[2]!.prompts).toEqual([{ kind: 'mask', rle: leftColumns(5) }]);
    expect(model.jobs[2]!.history).toEqual([{ text: 'Please segment the dog in this image.', prompts: [], raw: '<p> The dog </p> [SEG].<|im_end|>' }]);

    const conv = (await service.conversation('discord', 'c1', 't1'))!;
    expect(conv.turns.map((t) => [t.userText, t.status])).toEqual([['segment the dog', 'done'], ['segment everything', 'done'], ['describe #3', 'done']]);
    expect(conv.regions.map((r) => r.n)).toEqual([1, 2, 3]);
    expect(await service.blob(conv.image.hash)).toEqual(image);
  });

  it('refuses to describe an empty mask, which the model would describe as something, and queues nothing', async () => {
    const { service, model } = setup();
    const cat = await service.submit(ask('c1', 'segment the cat', { image: { bytes: image } }));
    expect(cat.segments.map((s) => [s.n, s.area])).toEqual([[1, 0]]);
    const refused = await refusal(service.submit(ask('c2', 'describe #1')));
    expect([refused.code, refused.userMessage]).toEqual(['OMG_ERR_BAD_REQUEST', 'Region #1 is empty: nothing was found for it, so there is nothing to describe.']);
    expect(model.jobs).toHaveLength(1);
    await service.submit(ask('c3', 'segment the dog'));
    await service.submit(ask('c4', 'describe #2'));
    expect(model.jobs[2]!.prompts).toEqual([{ kind: 'mask', rle: leftColumns(3) }]);
  });

  it('sends clicks as pixel prompts and mask files as RLE', async () => {
    const { service, model } = setup();
    const mask = { width: W, height: H, data: Uint8Array.from({ length: W * H }, (_, i) => (i % W < 3 ? 1 : 0)) };
    await service.submit(ask('p1', 'What are these?', {
      image: { bytes: image },
      prompts: [{ kind: 'point', x: 0.5, y: 0.5, normalized: true }, { kind: 'mask', mask }],
    }));
    expect(model.jobs[0]!.text).toBe('There are some regions: region1 <region>.\nThere are some marks: Mark 1 <mark>.\nWhat are these?');
    expect(model.jobs[0]!.prompts).toEqual([{ kind: 'mask', rle: leftColumns(3) }, { kind: 'point', x: 4, y: 3 }]);
  });

  it('runs a redelivered event once and answers it again from the store', async () => {
    const { service, model } = setup();
    const a = await service.submit(ask('same', 'segment the dog', { image: { bytes: image } }));
    const b = await service.submit(ask('same', 'segment the dog', { image: { bytes: image } }));
    expect(model.jobs).toHaveLength(1);
    expect(b).toEqual(a);
    expect((await service.conversation('discord', 'c1', 't1'))!.turns).toHaveLength(1);
  });

  it('records a failed turn and answers its redelivery with the same error', async () => {
    const { service, model } = setup();
    expect((await refusal(service.submit(ask('f1', 'please explode', { image: { bytes: image } })))).code).toBe('OMG_ERR_PROMPT_MISMATCH');
    expect((await service.conversation('discord', 'c1', 't1'))!.turns[0]).toMatchObject({ status: 'failed', error: 'OMG_ERR_PROMPT_MISMATCH' });
    expect((await refusal(service.submit(ask('f1', 'please explode')))).code).toBe('OMG_ERR_PROMPT_MISMATCH');
    expect(model.jobs).toHaveLength(1);
  });

  it('refuses bad input before anything is queued', async () => {
    const { service, model } = setup();
    expect((await refusal(service.submit(ask('n1', 'hello')))).code).toBe('OMG_ERR_NO_IMAGE');
    const notImage = new TextEncoder().encode('just text');
    expect((await refusal(service.submit(ask('n2', 'hi', { image: { bytes: notImage, name: 'cat.png' } })))).code).toBe('OMG_ERR_IMAGE_TYPE');
    await service.submit(ask('n3', 'hi', { image: { bytes: image } }));
    const outside = await refusal(service.submit(ask('n4', 'what is at (8, 2)')));
    expect(outside.code).toBe('OMG_ERR_BAD_REQUEST');
    expect(outside.userMessage).toContain('The image is 8x6 pixels');
    expect((await refusal(service.submit(ask('n5', 'describe #9')))).code).toBe('OMG_ERR_UNKNOWN_REGION');
    expect(model.jobs).toHaveLength(1);
    expect((await service.conversation('discord', 'c1', 't1'))!.turns).toHaveLength(1);
  });

  it('starts over when a new image arrives in the conversation', async () => {
    const { service } = setup();
    await service.submit(ask('i1', 'segment the dog', { image: { bytes: image } }));
    const other = new Uint8Array(await sharp({ create: { width: W, height: H, channels: 3, background: '#ffffff' } }).png().toBuffer());
    await service.submit(ask('i2', 'caption', { image: { bytes: other } }));
    const conv = (await service.conversation('discord', 'c1', 't1'))!;
    expect(conv.turns.map((t) => t.id)).toHaveLength(1);
    expect(conv.regions).toEqual([]);
  });

  it('refuses with OMG_ERR_BUSY when the queue is full', async () => {
    let release!: () => void;
    const { service } = setup({ gate: new Promise((r) => (release = r)), maxDepth: 1 });
    const running = service.submit(ask('b1', 'caption', { image: { bytes: image } }));
    await new Promise((r) => setTimeout(r, 50));
    const busy = await refusal(service.submit({ ...ask('b2', 'caption', { image: { bytes: image } }), thread: 'other' }));
    expect(busy.code).toBe('OMG_ERR_BUSY');
    release();
    await running;
  });

  it('cancels a turn through its signal and records it as cancelled', async () => {
    let release!: () => void;
    const { service } = setup({ gate: new Promise((r) => (release = r)) });
    const controller = new AbortController();
    const turn = service.submit(ask('x1', 'caption', { image: { bytes: image }, signal: controller.signal }));
    await new Promise((r) => setTimeout(r, 50));
    controller.abort();
    release();
    expect((await refusal(turn)).code).toBe('OMG_ERR_CANCELLED');
    const conv = (await service.conversation('discord', 'c1', 't1'))!;
    expect(conv.turns[0]).toMatchObject({ status: 'cancelled', error: 'OMG_ERR_CANCELLED' });
  });

  describe('on Redis', () => {
    const prefix = freshPrefix();
    const clients: Redis[] = [];
    const stores = () => {
      const redis = new Redis(redisTestUrl);
      clients.push(redis);
      return { store: new RedisConversationStore(redis, { prefix, ttlSec: 600 }), blobs: new RedisBlobStore(redis, { prefix, defaultTtlSec: 600 }) };
    };

    it('loses nothing across a restart: the next process resolves "#1" from Redis', async () => {
      const before = setup(stores());
      await before.service.submit(ask('r1', 'segment the dog', { image: { bytes: image } }));
      await before.queue.close();
      const after = setup(stores()); // a new process: new service, queue and connections
      const reply = await after.service.submit(ask('r2', 'describe #1'));
      expect(after.model.jobs[0]!.prompts).toEqual([{ kind: 'mask', rle: leftColumns(3) }]);
      expect(after.model.jobs[0]!.history).toHaveLength(1);
      expect(reply.text).toBe('A brown dog.');
    });

    afterAll(async () => {
      await Promise.all(clients.map((c) => c.quit()));
      await dropPrefix(prefix);
    });
  });
});
