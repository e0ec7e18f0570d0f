import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import sharp from 'sharp';
import { omgError } from '../../../src/errors.js';
import { createMetrics } from '../../../src/metrics.js';
import { colourFor } from '../../../src/render/palette.js';
import { encode } from '../../../src/render/rle.js';
import { buildWebServer } from '../../../src/bots/web/server.js';
import type { TurnService } from '../../../src/conversation/service.js';
import type { ProgressEvent } from '../../../src/queue/job.js';

// A TurnService stand-in that records what the web layer asks of it and answers like the real one: progress
// events in order, then a reply whose segment #1 is a known mask stored with the conversation.
type SubmitInput = Parameters<TurnService['submit']>[0];

const W = 8;
const H = 6;
const regionMask = { width: W, height: H, data: Uint8Array.from({ length: W * H }, (_, i) => (i % W >= 2 && i % W < 5 && i >= W ? 1 : 0)) };
const overlayBytes = Uint8Array.from([137, 80, 78, 71, 1, 2, 3]);

class FakeService {
  submits: SubmitInput[] = [];
  conversations = new Map<string, {
    image: { hash: string; mime: string };
    regions: { n: number; rle: ReturnType<typeof encode> }[];
    turns: { id: string; overlay?: { hash: string; mime: string } }[];
  }>();
  imageBytes: Uint8Array | null = null;
  failWith: unknown = null;
  hang = false; // wait until the caller's signal aborts, like a turn still in the queue

  async submit(input: SubmitInput) {
    this.submits.push(input);
    if (this.failWith) throw this.failWith;
    if (this.hang) {
      input.onProgress?.({ type: 'queued', position: 4 });
      await new Promise((resolve) => input.signal?.addEventListener('abort', resolve, { once: true }));
      throw omgError('OMG_ERR_CANCELLED');
    }
    const emit = (ev: ProgressEvent) => input.onProgress?.(ev);
    emit({ type: 'queued', position: 1 });
    emit({ type: 'started' });
    emit({ type: 'text', delta: 'It is ' });
    emit({ type: 'text', delta: 'a red circle.' });
    const turnId = `t${this.submits.length}`;
    if (input.image) this.imageBytes = input.image.bytes;
    const conv = this.conversations.get(input.thread) ?? { image: { hash: 'img', mime: 'image/png' }, regions: [], turns: [] };
    conv.regions.push({ n: 1, rle: encode(regionMask) });
    conv.turns.push({ id: turnId, overlay: { hash: 'ovl', mime: 'image/png' } });
    this.conversations.set(input.thread, conv);
    const reply = {
      conversationId: `web:playground:${input.thread}`, turnId, jobId: 'j', text: 'It is a red circle.',
      segments: [{ n: 1, phrase: 'a red circle', span: [6, 18] as [number, number], colour: colourFor(1), bbox: [2, 1, 5, 6] as [number, number, number, number], area: 15, score: 0.9 }],
      overlay: { bytes: overlayBytes, mime: 'image/png' as const }, timings: { total: 12 },
    };
    return reply;
  }
  async cancel() { return false; }
  async conversation(_platform: string, _channel: string, thread: string) { return this.conversations.get(thread) ?? null; }
  async blob(hash: string) { return hash === 'ovl' ? overlayBytes : hash === 'img' ? this.imageBytes : null; }
}

async function png(width: number, height: number): Promise<Buffer> {
  return sharp({ create: { width, height, channels: 3, background: { r: 200, g: 30, b: 30 } } }).png().toBuffer();
}

function form(field: string, bytes: Uint8Array, type = 'image/png'): FormData {
  const body = new FormData();
  body.append(field, new Blob([Buffer.from(bytes)], { type }), 'scene.png');
  return body;
}

let app: FastifyInstance;
let service: FakeService;
let healthy = true;

beforeEach(async () => {
  service = new FakeService();
  healthy = true;
  const metrics = createMetrics();
  metrics.queueDepth.set(3);
  app = await buildWebServer({
    service: service as unknown as TurnService,
    limits: { maxBytes: 50_000, maxPixels: 1_000_000 },
    registry: metrics.registry,
    health: async () => ({ ok: healthy, queueDepth: 3 }),
  });
});
afterEach(() => app.close());

async function upload(): Promise<string> {
  const res = await app.inject({ method: 'POST', url: '/api/conversations', payload: form('image', await png(W, H)) });
  expect(res.statusCode).toBe(201);
  expect(res.json()).toMatchObject({ width: W, height: H });
  return res.json().id as string;
}

describe('playground static page', () => {
  it('serves the page, its script and its style', async () => {
    const page = await app.inject('/');
    expect(page.headers['content-type']).toMatch(/text\/html/);
    expect(page.body).toContain('id="stage"');
    expect((await app.inject('/app.js')).headers['content-type']).toMatch(/javascript/);
    expect((await app.inject('/style.css')).statusCode).toBe(200);
    expect((await app.inject('/api.ts')).statusCode).toBe(404);
  });
});

describe('POST /api/conversations', () => {
  it('rejects a request without the image field', async () => {
    const res = await app.inject({ method: 'POST', url: '/api/conversations', payload: form('picture', await png(W, H)) });
    expect(res.statusCode).toBe(400);
    expect(res.json().error).toEqual({ code: 'OMG_ERR_BAD_REQUEST', message: expect.stringMatching(/field "image"/) });
    const json = await app.inject({ method: 'POST', url: '/api/conversations', payload: { image: 'x' } });
    expect(json.statusCode).toBe(400);
  });

  it('rejects files that are not images and images over the byte cap', async () => {
    const text = await app.inject({ method: 'POST', url: '/api/conversations', payload: form('image', new TextEncoder().encode('hello, not an image')) });
    expect(text.statusCode).toBe(415);
    expect(text.json().error.code).toBe('OMG_ERR_IMAGE_TYPE');
    const big = await app.inject({ method: 'POST', url: '/api/conversations', payload: form('image', new Uint8Array(60_000)) });
    expect(big.statusCode).toBe(413);
    expect(big.json().error.code).toBe('OMG_ERR_IMAGE_TOO_LARGE');
  });
});

describe('POST /api/conversations/:id/ask', () => {
  it('answers with segments, mask and overlay URLs, and sends the image only with the first turn', async () => {
    const id = await upload();
    const res = await app.inject({ method: 'POST', url: `/api/conversations/${id}/ask`, payload: { text: 'What is this?', prompts: [{ kind: 'point', x: 3, y: 2 }] } });
    expect(res.statusCode).toBe(200);
    const reply = res.json();
    expect(reply).toEqual({
      id: 't1',
      text: 'It is a red circle.',
      segments: [{
        n: 1, phrase: 'a red circle', span: [6, 18], colour: { hex: colourFor(1).hex, name: colourFor(1).name },
        bbox: [2, 1, 5, 6], area: 15, score: 0.9, maskUrl: `/api/conversations/${id}/masks/1.png`,
      }],
      overlayUrl: `/api/conversations/${id}/turns/t1/overlay`,
      timings: { total: 12 },
    });
    expect(service.submits[0]).toMatchObject({ platform: 'web', thread: id, text: 'What is this?', prompts: [{ kind: 'point', x: 3, y: 2 }] });
    expect(service.submits[0]!.image?.bytes.length).toBeGreaterThan(0);
    // Until the first turn the page's image comes from the upload; afterwards from the conversation (see below).

    await app.inject({ method: 'POST', url: `/api/conversations/${id}/ask`, payload: { text: 'And now?' } });
    expect(service.submits[1]!.image).toBeUndefined();
    expect(service.submits[1]!.eventId).not.toBe(service.submits[0]!.eventId);

    // Prompts without text are a question as well (the intent parser makes it a description of the place).
    const promptOnly = await app.inject({ method: 'POST', url: `/api/conversations/${id}/ask`, payload: { prompts: [{ kind: 'region', n: 1 }] } });
    expect(promptOnly.statusCode).toBe(200);
    expect(service.submits[2]).toMatchObject({ text: '', prompts: [{ kind: 'region', n: 1 }] });
  });

  it('streams progress events in order and ends with the reply', async () => {
    const id = await upload();
    const res = await app.inject({
      method: 'POST', url: `/api/conversations/${id}/ask`, headers: { accept: 'application/x-ndjson' }, payload: { text: 'Segment the circle' },
    });
    expect(res.headers['content-type']).toMatch(/application\/x-ndjson/);
    const events = res.body.trim().split('\n').map((line) => JSON.parse(line));
    expect(events.map((e) => e.type)).toEqual(['queued', 'started', 'text', 'text', 'reply']);
    expect(events[0]).toEqual({ type: 'queued', position: 1 });
    expect(events[4].reply.text).toBe('It is a red circle.');
  });

  it('serves the uploaded image before and after the first turn', async () => {
    const id = await upload();
    const before = await app.inject(`/api/conversations/${id}/image`);
    expect(before.headers['content-type']).toBe('image/png');
    expect((await sharp(before.rawPayload).metadata()).width).toBe(W);
    await app.inject({ method: 'POST', url: `/api/conversations/${id}/ask`, payload: { text: 'q' } });
    service.imageBytes = new Uint8Array([137, 80, 78, 71, 9]); // the stored copy, told apart from the upload
    const after = await app.inject(`/api/conversations/${id}/image`);
    expect(new Uint8Array(after.rawPayload)).toEqual(service.imageBytes);
    expect((await app.inject('/api/conversations/6f1c1f0e-8f57-4b7e-9d1c-2a4a0f3b9e11/image')).statusCode).toBe(404);
  });

  it('serves the mask of a segment as a binary PNG at the image size, and the overlay', async () => {
    const id = await upload();
    const reply = (await app.inject({ method: 'POST', url: `/api/conversations/${id}/ask`, payload: { text: 'Segment it' } })).json();
    const mask = await app.inject(reply.segments[0].maskUrl);
    expect(mask.headers['content-type']).toBe('image/png');
    expect((await sharp(mask.rawPayload).metadata()).channels).toBe(1);
    const { data, info } = await sharp(mask.rawPayload).extractChannel(0).raw().toBuffer({ resolveWithObject: true });
    expect([info.width, info.height]).toEqual([W, H]);
    expect(Array.from(data, (v) => (v === 255 ? 1 : 0))).toEqual(Array.from(regionMask.data));
    expect(data.every((v) => v === 0 || v === 255)).toBe(true);

    const overlay = await app.inject(reply.overlayUrl);
    expect(new Uint8Array(overlay.rawPayload)).toEqual(overlayBytes);
    expect((await app.inject(`/api/conversations/${id}/masks/7.png`)).json().error.code).toBe('OMG_ERR_UNKNOWN_REGION');
    expect((await app.inject(`/api/conversations/${id}/turns/t9/overlay`)).statusCode).toBe(404);
  });

  it('explains malformed requests and unknown conversations', async () => {
    const id = await upload();
    const noText = await app.inject({ method: 'POST', url: `/api/conversations/${id}/ask`, payload: { prompts: [] } });
    expect(noText.statusCode).toBe(400);
    expect(noText.json().error.message).toMatch(/"text"/);
    const badPrompt = await app.inject({ method: 'POST', url: `/api/conversations/${id}/ask`, payload: { text: 'q', prompts: [{ kind: 'point', x: -1, y: 2 }] } });
    expect(badPrompt.statusCode).toBe(400);
    const badJson = await app.inject({ method: 'POST', url: `/api/conversations/${id}/ask`, headers: { 'content-type': 'application/json' }, payload: '{"text":' });
    expect(badJson.statusCode).toBe(400);
    expect(badJson.json().error.code).toBe('OMG_ERR_BAD_REQUEST');
    const unknown = await app.inject({ method: 'POST', url: '/api/conversations/6f1c1f0e-8f57-4b7e-9d1c-2a4a0f3b9e11/ask', payload: { text: 'q' } });
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json().error.code).toBe('OMG_ERR_NO_IMAGE');
    expect((await app.inject({ method: 'POST', url: '/api/conversations/..%2Fetc/ask', payload: { text: 'q' } })).statusCode).toBe(400);
    expect(service.submits).toHaveLength(0);
  });

  it('maps service errors to HTTP statuses without leaking internals', async () => {
    const id = await upload();
    service.failWith = omgError('OMG_ERR_BUSY');
    const busy = await app.inject({ method: 'POST', url: `/api/conversations/${id}/ask`, payload: { text: 'q' } });
    expect(busy.statusCode).toBe(503);
    expect(busy.json().error).toEqual({ code: 'OMG_ERR_BUSY', message: omgError('OMG_ERR_BUSY').userMessage });

    service.failWith = new Error('secret stack detail');
    const internal = await app.inject({ method: 'POST', url: `/api/conversations/${id}/ask`, payload: { text: 'q' } });
    expect(internal.statusCode).toBe(500);
    expect(internal.body).not.toContain('secret stack detail');

    const streamed = await app.inject({ method: 'POST', url: `/api/conversations/${id}/ask`, headers: { accept: 'application/x-ndjson' }, payload: { text: 'q' } });
    expect(JSON.parse(streamed.body.trim())).toEqual({ type: 'error', error: { code: 'OMG_ERR_INTERNAL', message: expect.any(String) } });
    expect(streamed.body).not.toContain('secret stack detail');
  });
});

describe('client disconnects', () => {
  it('cancel the turn when the browser goes away mid-stream', async () => {
    const id = await upload();
    service.hang = true;
    const address = await app.listen({ host: '127.0.0.1', port: 0 });
    const abort = new AbortController();
    const res = await fetch(`${address}/api/conversations/${id}/ask`, {
      method: 'POST', signal: abort.signal,
      headers: { 'content-type': 'application/json', accept: 'application/x-ndjson' }, body: JSON.stringify({ text: 'q' }),
    });
    const reader = res.body!.getReader();
    expect(new TextDecoder().decode((await reader.read()).value)).toBe('{"type":"queued","position":4}\n');
    const signal = service.submits[0]!.signal!;
    expect(signal.aborted).toBe(false);
    abort.abort();
    await expect.poll(() => signal.aborted).toBe(true);
  });
});

describe('operations endpoints', () => {
  it('reports health with 200 or 503 and serves prometheus metrics', async () => {
    expect((await app.inject('/healthz')).json()).toEqual({ ok: true, queueDepth: 3 });
    healthy = false;
    expect((await app.inject('/healthz')).statusCode).toBe(503);
    const metrics = await app.inject('/metrics');
    expect(metrics.headers['content-type']).toMatch(/text\/plain/);
    expect(metrics.body).toMatch(/^omg_queue_depth 3$/m);
  });
});
