// The worker's turn: TurnJobV1 -> TurnResultV1. Reads the image from the BlobStore, runs the model through the
// inference API (OmgLlava in process, or InferenceClient on a worker thread), turns masks into RLE and stores the
// rendered overlay back in the BlobStore. Chats stay open per conversation so that a follow-up turn on the same
// worker reuses the KV cache; on any other worker the job's history rebuilds it.
import { createHash } from 'node:crypto';
import { omgError } from '../errors.js';
import type { Answer, CacheStats, HistoryTurn, Region, Timings, VisualPrompt } from '../inference/index.js';
import { observeTimings, type Metrics } from '../metrics.js';
import { renderOverlay } from '../render/overlay.js';
import { decode, encode } from '../render/rle.js';
import type { BlobStore } from './blobs.js';
import type { JobPrompt, ResultSegment, TurnJobV1, TurnResultV1 } from './job.js';
import type { ProcessTurn } from './queue.js';

/** The part of the inference API a worker needs; OmgLlava and InferenceClient both provide it. */
export interface TurnModel {
  conversation(image: Uint8Array, history?: HistoryTurn[]): Promise<TurnChat>;
  segmentEverything(image: Uint8Array): Promise<{ regions: Region[]; timings: Timings }>;
  stats(): { imageCache: CacheStats; kvCache: CacheStats } | Promise<{ imageCache: CacheStats; kvCache: CacheStats }>;
}
export interface TurnChat {
  ask(text: string, opts: { prompts?: VisualPrompt[]; signal?: AbortSignal; onToken?: (delta: string) => void }): Promise<Answer>;
  close(): void | Promise<void>;
}

export interface ProcessorDeps {
  model: TurnModel;
  blobs: BlobStore;
  metrics: Metrics;
  overlayTtlSec: number;
  openChats?: number; // conversations whose chat (and KV cache) stay open on this worker; default 32
}

export function toVisualPrompt(p: JobPrompt): VisualPrompt {
  return p.kind === 'mask' ? { kind: 'mask', mask: decode(p.rle) } : p;
}

export function createProcessor(deps: ProcessorDeps): ProcessTurn {
  const chats = new OpenChats(deps.openChats ?? 32);
  const reportCaches = cacheReporter(deps.metrics);

  return async (job, { signal, emit }) => {
    const image = await deps.blobs.get(job.image.hash);
    if (!image) throw omgError('OMG_ERR_IMAGE_EXPIRED');
    const answer = job.task === 'everything' ? await everything(deps.model, image) : await chats.ask(deps.model, job, image, signal, emit);
    const t0 = performance.now();
    const overlay = await storeOverlay(deps, job, image, answer.segments);
    const timings: Record<string, number> = { ...answer.timings, render: performance.now() - t0 };
    observeTimings(deps.metrics, timings);
    reportCaches(await deps.model.stats());
    return {
      v: 1,
      text: answer.text,
      raw: answer.raw,
      segments: answer.segments.map(({ mask, ...segment }) => ({ ...segment, bbox: mask.bbox, area: mask.area, score: mask.score, rle: encode(mask) })),
      overlay,
      timings,
      usage: answer.usage,
    };
  };
}

type Segments = (Omit<ResultSegment, 'bbox' | 'area' | 'score' | 'rle'> & { mask: Answer['segments'][number]['mask'] })[];

/** Segment-everything as an answer: one segment per region, labelled with its class. */
async function everything(model: TurnModel, image: Uint8Array): Promise<Omit<Answer, 'segments'> & { segments: Segments }> {
  const { regions, timings } = await model.segmentEverything(image);
  return {
    text: regions.length > 0 ? regions.map((r) => r.label).join(', ') : 'No objects were found in the image.',
    raw: '',
    segments: regions.map((r) => ({ phrase: r.label, span: null, label: r.label, mask: r.mask })),
    timings,
    usage: { promptTokens: 0, newTokens: 0, cachedTokens: 0 },
  };
}

async function storeOverlay(deps: ProcessorDeps, job: TurnJobV1, image: Uint8Array, segments: Segments): Promise<TurnResultV1['overlay']> {
  // Empty masks (a target the image lacks) draw nothing: an overlay of nothing but them is the image again.
  if (segments.every((s) => s.mask.area === 0)) return null;
  const first = job.render.firstRegion ?? 1;
  const layers = segments.map((s, i) => ({ n: first + i, mask: s.mask, phrase: s.label ?? s.phrase }));
  const rendered = await renderOverlay(image, layers, { legend: job.render.legend });
  const hash = createHash('sha256').update(rendered.bytes).digest('hex');
  await deps.blobs.put(hash, rendered.bytes, deps.overlayTtlSec);
  return { hash, mime: rendered.mime, bytes: rendered.bytes.byteLength };
}

/** Open chats by conversation, least recently used first out; a chat is reused only if it has seen exactly the job's history. */
class OpenChats {
  private readonly open = new Map<string, { chat: TurnChat; turns: number; imageHash: string }>();

  constructor(private readonly max: number) {}

  async ask(model: TurnModel, job: TurnJobV1, image: Uint8Array, signal: AbortSignal, emit: Parameters<ProcessTurn>[1]['emit']) {
    let entry = this.open.get(job.conversationId);
    this.open.delete(job.conversationId);
    if (!entry || entry.turns !== job.history.length || entry.imageHash !== job.image.hash) {
      await entry?.chat.close();
      const history = job.history.map((turn) => ({ text: turn.text, raw: turn.raw, prompts: turn.prompts.map(toVisualPrompt) }));
      entry = { chat: await model.conversation(image, history), turns: job.history.length, imageHash: job.image.hash };
    }
    this.open.set(job.conversationId, entry);
    for (const [id, old] of this.open) {
      if (this.open.size <= this.max) break;
      this.open.delete(id);
      await old.chat.close();
    }
    const answer = await entry.chat.ask(job.text, {
      prompts: job.prompts.map(toVisualPrompt),
      signal,
      onToken: (delta) => emit({ type: 'text', delta }),
    });
    entry.turns++;
    return answer;
  }
}

/** Turns the model's cumulative cache counters into metric increments. */
function cacheReporter(metrics: Metrics) {
  const seen = new Map<string, { hits: number; misses: number }>();
  return (stats: { imageCache: CacheStats; kvCache: CacheStats }) => {
    for (const [cache, s] of [['image', stats.imageCache], ['kv', stats.kvCache]] as const) {
      const last = seen.get(cache) ?? { hits: 0, misses: 0 };
      metrics.cacheRequests.inc({ cache, result: 'hit' }, Math.max(0, s.hits - last.hits));
      metrics.cacheRequests.inc({ cache, result: 'miss' }, Math.max(0, s.misses - last.misses));
      metrics.cacheBytes.set({ cache }, s.bytes);
      seen.set(cache, { hits: s.hits, misses: s.misses });
    }
  };
}
