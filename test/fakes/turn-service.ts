// A real TurnService (in-process queue, memory stores) whose worker is a TEST DOUBLE: instead of the model it
// answers a fixed grounded sentence with one mask (two for segment-everything), streamed token by token, and
// renders the overlay with the real src/render. The adapters under test see exactly what the model path gives
// them: progress events, grounded text with spans, numbered regions and an overlay image.
import { TurnService } from '../../src/conversation/service.js';
import { MemoryConversationStore } from '../../src/conversation/store.js';
import { createLogger } from '../../src/log.js';
import { loadConfig } from '../../src/config.js';
import { createMetrics } from '../../src/metrics.js';
import { MemoryBlobStore } from '../../src/queue/blobs.js';
import type { ResultSegment, TurnJobV1, TurnResultV1 } from '../../src/queue/job.js';
import { MemoryTurnQueue } from '../../src/queue/memory.js';
import type { ProcessTurn } from '../../src/queue/queue.js';
import { renderOverlay } from '../../src/render/overlay.js';
import { encode, type BinaryMask } from '../../src/render/rle.js';

export const ANSWER = 'There is a red circle on the left.';
const PHRASE = 'a red circle';

export interface WorkerLog { jobs: TurnJobV1[] }

/** The service plus what its worker saw. `tokenMs` slows streaming (for progress, queue and cancel tests). */
export function testService(opts: { tokenMs?: number } = {}): { service: TurnService; worker: WorkerLog; blobs: MemoryBlobStore } {
  const config = loadConfig({ LOG_LEVEL: 'silent' });
  const logger = createLogger(config);
  const blobs = new MemoryBlobStore({ defaultTtlSec: 3600, maxBytes: 256 * 1024 * 1024 });
  const worker: WorkerLog = { jobs: [] };
  const processTurn: ProcessTurn = async (job, { signal, emit }) => {
    worker.jobs.push(job);
    const tokens = job.task === 'everything' ? [] : ANSWER.split(/(?<= )/);
    for (const token of tokens) {
      if (signal.aborted) throw signal.reason;
      await new Promise((resolve) => setTimeout(resolve, opts.tokenMs ?? 0));
      emit({ type: 'text', delta: token });
    }
    return answer(job, blobs);
  };
  const queue = new MemoryTurnQueue({ maxDepth: 50, timeoutMs: 60_000, attempts: 1 }, { processTurn, logger, metrics: createMetrics() });
  const store = new MemoryConversationStore({ ttlSec: 3600, maxEntries: 1000 });
  const service = new TurnService(config, { queue, blobs, store, logger });
  return { service, worker, blobs };
}

async function answer(job: TurnJobV1, blobs: MemoryBlobStore): Promise<TurnResultV1> {
  const image = await blobs.get(job.image.hash);
  if (!image) throw new Error(`image ${job.image.hash} is not in the blob store`);
  const { width, height } = job.image;
  const boxes: [number, number, number, number][] = job.task === 'everything'
    ? [[0, 0, width >> 1, height], [width >> 1, 0, width, height]]
    : [[0, 0, Math.max(1, width >> 1), Math.max(1, height >> 1)]];
  const masks = boxes.map((b) => box(width, height, b));
  const first = job.render.firstRegion ?? 1;
  const overlay = await renderOverlay(image, masks.map((mask, i) => ({ n: first + i, mask })));
  const overlayHash = `${job.image.hash.slice(0, 32)}${String(first).padStart(32, '0')}`;
  await blobs.put(overlayHash, overlay.bytes);
  const text = job.task === 'everything' ? '' : ANSWER;
  const start = ANSWER.indexOf(PHRASE);
  const segments: ResultSegment[] = masks.map((mask, i) => ({
    phrase: job.task === 'everything' ? '' : PHRASE,
    span: job.task === 'everything' ? null : [start, start + PHRASE.length],
    ...(job.task === 'everything' ? { label: ['left half', 'right half'][i]! } : {}),
    bbox: boxes[i]!, area: mask.data.reduce((a, b) => a + b, 0), score: 0.9, rle: encode(mask),
  }));
  return { v: 1, text, raw: text, segments, overlay: { hash: overlayHash, mime: overlay.mime, bytes: overlay.bytes.length },
    timings: {}, usage: { promptTokens: 1, newTokens: 1, cachedTokens: 0 } };
}

function box(width: number, height: number, [x1, y1, x2, y2]: [number, number, number, number]): BinaryMask {
  const data = new Uint8Array(width * height);
  for (let y = y1; y < y2; y++) data.fill(1, y * width + x1, y * width + x2);
  return { width, height, data };
}
