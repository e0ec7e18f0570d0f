import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OmgLlava, type Answer, type HistoryTurn, type VisualPrompt } from '../../src/inference/index.js';
import { createMetrics } from '../../src/metrics.js';
import { MemoryBlobStore } from '../../src/queue/blobs.js';
import type { JobPrompt, ProgressEvent, TurnJobV1 } from '../../src/queue/job.js';
import { createProcessor, type TurnModel } from '../../src/queue/processor.js';
import { encode, type Rle } from '../../src/render/rle.js';

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const fixture = (name: string) => new URL(`../fixtures/tiny-random/${name}`, import.meta.url);

function job(over: Partial<TurnJobV1> & { image: TurnJobV1['image'] }): TurnJobV1 {
  return { v: 1, id: 'turn-1', conversationId: 'web:c1:t1', task: 'chat', text: 'Hi', prompts: [], history: [], render: { legend: false }, ...over };
}

function run(processTurn: ReturnType<typeof createProcessor>, turn: TurnJobV1) {
  const events: ProgressEvent[] = [];
  const result = processTurn(turn, { signal: new AbortController().signal, emit: (ev) => events.push(ev) });
  return { events, result };
}

describe('processor with a scripted model (TEST DOUBLE: stands in for the inference core to check the worker logic)', () => {
  // A 4x3 image and a model that answers with one mask over its left half (an empty one when asked of a cat, which
  // the image lacks) and streams two tokens.
  const half = { width: 4, height: 3, data: Uint8Array.from([1, 1, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0]) };
  const mask = { ...half, bbox: [0, 0, 2, 3] as [number, number, number, number], area: 6, score: 0.9 };
  const empty = { width: 4, height: 3, data: new Uint8Array(12), bbox: [0, 0, 0, 0] as [number, number, number, number], area: 0, score: 0 };
  let image: Uint8Array;
  let hash: string;
  beforeAll(async () => {
    image = new Uint8Array(await sharp({ create: { width: 4, height: 3, channels: 3, background: '#808080' } }).png().toBuffer());
    hash = sha256(image);
  });

  function scriptedModel() {
    const log = { conversations: [] as HistoryTurn[][], asks: [] as { text: string; prompts?: VisualPrompt[] }[], closed: 0 };
    const model: TurnModel = {
      async conversation(_image, history = []) {
        log.conversations.push(history);
        return {
          async ask(text, opts) {
            log.asks.push({ text, prompts: opts.prompts });
            opts.onToken?.('It is ');
            opts.onToken?.('left.');
            const answer: Answer = {
              text: 'It is left.', raw: '<p>It</p>[SEG] is left.', segments: [{ phrase: 'It', span: [0, 2], mask: text === 'cat' ? empty : mask }],
              usage: { promptTokens: 10, newTokens: 2, cachedTokens: 0 }, timings: { decode: 5, decodeTokens: 2 },
            };
            return answer;
          },
          close() {
            log.closed++;
          },
        };
      },
      async segmentEverything() {
        return { regions: [{ id: 1, label: 'blob', classId: 4, score: 0.8, mask }], timings: { vision: 3 } };
      },
      stats: () => ({
        imageCache: { hits: 1, misses: 1, bytes: 100, entries: 1, evictions: 0 },
        kvCache: { hits: 0, misses: 1, bytes: 50, entries: 1, evictions: 0 },
      }),
    };
    return { model, log };
  }

  it('answers a chat turn: streamed text, RLE masks, overlay in the blob store, cache metrics', async () => {
    const blobs = new MemoryBlobStore({ defaultTtlSec: 60, maxBytes: 1 << 20 });
    await blobs.put(hash, image);
    const metrics = createMetrics();
    const { model } = scriptedModel();
    const { events, result } = run(createProcessor({ model, blobs, metrics, overlayTtlSec: 60 }), job({ image: { hash, width: 4, height: 3 } }));
    const out = await result;
    expect(events).toEqual([{ type: 'text', delta: 'It is ' }, { type: 'text', delta: 'left.' }]);
    expect(out).toMatchObject({ v: 1, text: 'It is left.', raw: '<p>It</p>[SEG] is left.', usage: { newTokens: 2 } });
    expect(out.segments).toEqual([{ phrase: 'It', span: [0, 2], bbox: [0, 0, 2, 3], area: 6, score: 0.9, rle: { size: [3, 4], counts: [0, 2, 2, 2, 2, 2, 2] } }]);
    expect(out.timings.render).toBeGreaterThan(0);
    const overlay = await blobs.get(out.overlay!.hash);
    expect(overlay!.byteLength).toBe(out.overlay!.bytes);
    expect(await sharp(overlay!).metadata()).toMatchObject({ width: 4, height: 3, format: 'png' });
    const text = await metrics.registry.metrics();
    expect(text).toContain('omg_cache_requests_total{cache="image",result="hit"} 1');
    expect(text).toContain('omg_cache_bytes{cache="kv"} 50');
  });

  it('keeps an empty mask in the answer but renders no overlay of nothing', async () => {
    const blobs = new MemoryBlobStore({ defaultTtlSec: 60, maxBytes: 1 << 20 });
    await blobs.put(hash, image);
    const { model } = scriptedModel();
    const out = await run(createProcessor({ model, blobs, metrics: createMetrics(), overlayTtlSec: 60 }), job({ image: { hash, width: 4, height: 3 }, text: 'cat' })).result;
    expect(out.segments).toEqual([{ phrase: 'It', span: [0, 2], bbox: [0, 0, 0, 0], area: 0, score: 0, rle: { size: [3, 4], counts: [12] } }]);
    expect(out.overlay).toBeNull();
  });

  it('keeps a conversation open for the next turn and rebuilds it from history otherwise', async () => {
    const blobs = new MemoryBlobStore({ defaultTtlSec: 60, maxBytes: 1 << 20 });
    await blobs.put(hash, image);
    const { model, log } = scriptedModel();
    const processTurn = createProcessor({ model, blobs, metrics: createMetrics(), overlayTtlSec: 60, openChats: 1 });
    const img = { hash, width: 4, height: 3 };
    const maskPrompt: JobPrompt = { kind: 'mask', rle: encode(half) };
    await run(processTurn, job({ image: img, text: 'one' })).result;
    const turn1 = { text: 'one', prompts: [], raw: '<p>It</p>[SEG] is left.' };
    await run(processTurn, job({ image: img, text: 'two <region>', prompts: [maskPrompt], history: [turn1] })).result;
    expect(log.conversations).toHaveLength(1); // the same chat served both turns
    expect(log.asks[1]!.prompts).toEqual([{ kind: 'mask', mask: half }]);

    await run(processTurn, job({ image: img, conversationId: 'web:c2:t1', text: 'other' })).result; // evicts c1 (openChats: 1)
    expect(log.closed).toBe(1);
    const turn2 = { text: 'two <region>', prompts: [maskPrompt], raw: 'x' };
    await run(processTurn, job({ image: img, text: 'three', history: [turn1, turn2] })).result;
    expect(log.conversations.at(-1)).toEqual([
      { text: 'one', prompts: [], raw: turn1.raw },
      { text: 'two <region>', prompts: [{ kind: 'mask', mask: half }], raw: 'x' },
    ]);
  });

  it('answers segment-everything with labelled regions', async () => {
    const blobs = new MemoryBlobStore({ defaultTtlSec: 60, maxBytes: 1 << 20 });
    await blobs.put(hash, image);
    const { model } = scriptedModel();
    const out = await run(createProcessor({ model, blobs, metrics: createMetrics(), overlayTtlSec: 60 }),
      job({ image: { hash, width: 4, height: 3 }, task: 'everything', text: '', render: { legend: true } })).result;
    expect(out.text).toBe('blob');
    expect(out.segments).toMatchObject([{ phrase: 'blob', label: 'blob', span: null, area: 6 }]);
    expect(out.overlay).not.toBeNull();

    const none = { ...model, segmentEverything: async () => ({ regions: [], timings: {} }) };
    const nothing = await run(createProcessor({ model: none, blobs, metrics: createMetrics(), overlayTtlSec: 60 }),
      job({ image: { hash, width: 4, height: 3 }, task: 'everything', text: '', render: { legend: true } })).result;
    expect([nothing.text, nothing.segments, nothing.overlay]).toEqual(['No objects were found in the image.', [], null]);
  });

  it('fails with OMG_ERR_IMAGE_EXPIRED when the image is gone', async () => {
    const { model } = scriptedModel();
    const processTurn = createProcessor({ model, blobs: new MemoryBlobStore({ defaultTtlSec: 60, maxBytes: 1 << 20 }), metrics: createMetrics(), overlayTtlSec: 60 });
    await expect(run(processTurn, job({ image: { hash, width: 4, height: 3 } })).result).rejects.toMatchObject({ code: 'OMG_ERR_IMAGE_EXPIRED' });
  });
});

describe('processor with the real tiny-random bundle', () => {
  interface GoldenTensor { shape: number[]; b64: string }
  const golden = JSON.parse(readFileSync(fixture('golden.json'), 'utf8')) as {
    tensors: Record<string, GoldenTensor>;
    case: { width: number; height: number; turns: { question: string; prompts: Record<string, number | string>[] }[] };
  };
  /** The golden binary masks of a turn as RLE, [N,H,W] uint8. */
  function goldenRles(turn: number): Rle[] {
    const t = golden.tensors[`turn${turn}.masks`]!;
    const data = new Uint8Array(Buffer.from(t.b64, 'base64'));
    const [n, height, width] = t.shape as [number, number, number];
    return Array.from({ length: n }, (_, i) => encode({ width, height, data: data.subarray(i * width * height, (i + 1) * width * height) }));
  }

  let model: OmgLlava;
  let blobs: MemoryBlobStore;
  let image: TurnJobV1['image'];
  let prompts: JobPrompt[][];
  beforeAll(async () => {
    model = await OmgLlava.load(fileURLToPath(fixture('')));
    blobs = new MemoryBlobStore({ defaultTtlSec: 60, maxBytes: 1 << 24 });
    const bytes = new Uint8Array(readFileSync(fixture('golden-image.png')));
    image = { hash: sha256(bytes), width: golden.case.width, height: golden.case.height };
    await blobs.put(image.hash, bytes);
    const { data, info } = await sharp(readFileSync(fixture('golden-mask.png'))).greyscale().raw().toBuffer({ resolveWithObject: true });
    const maskRle = encode({ width: info.width, height: info.height, data: Uint8Array.from(data, (v) => (v > 127 ? 1 : 0)) });
    prompts = golden.case.turns.map((t) => t.prompts.map((p) => (p.kind === 'mask' ? { kind: 'mask', rle: maskRle } : (p as JobPrompt))));
  });
  afterAll(() => model?.dispose());

  it('runs the golden two-turn case: same masks as the Python reference, cached follow-up, rebuild from history', async () => {
    const processTurn = createProcessor({ model, blobs, metrics: createMetrics(), overlayTtlSec: 60 });
    const [q1, q2] = golden.case.turns.map((t) => t.question) as [string, string];
    const first = await run(processTurn, job({ image, id: 'turn-a', text: q1, prompts: prompts[0]! }));
    const r1 = await first.result;
    expect(goldenRles(1)).toHaveLength(1); // one [SEG] per golden turn
    expect(r1.segments.map((s) => s.rle)).toEqual(goldenRles(1));
    expect(first.events.map((e) => (e.type === 'text' ? e.delta : '')).join('')).toContain('Red circle');
    expect(r1.overlay).not.toBeNull();

    const history = [{ text: q1, prompts: prompts[0]!, raw: r1.raw }];
    const second = await run(processTurn, job({ image, id: 'turn-b', text: q2, prompts: prompts[1]!, history })).result;
    expect(second.segments.map((s) => s.rle)).toEqual(goldenRles(2));
    expect(second.usage.cachedTokens).toBeGreaterThan(0);

    // Another worker (a fresh processor) rebuilds the conversation from the job's history and agrees.
    const elsewhere = createProcessor({ model, blobs, metrics: createMetrics(), overlayTtlSec: 60 });
    const rebuilt = await run(elsewhere, job({ image, id: 'turn-c', text: q2, prompts: prompts[1]!, history })).result;
    expect(rebuilt.segments.map((s) => s.rle)).toEqual(goldenRles(2));
    expect(rebuilt.text).toBe(second.text);
  });
});
