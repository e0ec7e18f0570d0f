// Part 4: what the service adds to a turn. The same first turns (a new image each, so no cache hits) run
// (a) directly: OmgLlava in this thread, then the overlay and the RLE the worker would produce;
// (b) through the in-process queue and the worker processor, the model on a worker thread (InferenceClient);
// (c) through BullMQ on a loopback Redis, with the worker consumer in this process.
// Also the queues' own cost per job (a processor that does nothing) and BullMQ throughput with 1 and 2 workers.
import { createHash, randomUUID } from 'node:crypto';
import { loadConfig, type Config } from '../src/config.js';
import { InferenceClient, OmgLlava } from '../src/inference/index.js';
import { createLogger } from '../src/log.js';
import { createMetrics } from '../src/metrics.js';
import { MemoryBlobStore, RedisBlobStore, type BlobStore } from '../src/queue/blobs.js';
import { BullTurnQueue, startWorker, type TurnWorker } from '../src/queue/bullmq.js';
import type { TurnJobV1, TurnResultV1 } from '../src/queue/job.js';
import { MemoryTurnQueue } from '../src/queue/memory.js';
import { createProcessor } from '../src/queue/processor.js';
import type { ProcessTurn, TurnQueue } from '../src/queue/queue.js';
import { renderOverlay } from '../src/render/overlay.js';
import { encode as rleEncode } from '../src/render/rle.js';
import { Redis } from 'ioredis';
import type { Ask } from './cases.js';
import { summarize, type Summary } from './stats.js';

export interface ServiceOptions {
  bundle: string; threads: number; reps: number; warmup: number; queueJobs: number; throughputJobs: number;
  redisUrl: string | null; // null: BullMQ parts are skipped
  ask: Ask; image: { width: number; height: number };
  nextImage: () => Promise<Uint8Array>; // a new image (new hash) per job
}

export interface PathResult { turn: Summary; overheadMs: number; overheadShare: number }
export interface ServiceResult {
  direct: Summary;
  memory: PathResult;
  bullmq: PathResult | null;
  queueOnly: { memory: Summary; bullmq: Summary | null }; // ms per job with a processor that does nothing
  throughput: { workers: number; jobsPerSecond: number; jobs: number }[];
}

const silentConfig = (redisUrl: string | null): Config =>
  loadConfig({ LOG_LEVEL: 'silent', JOB_ATTEMPTS: '1', MAX_QUEUE_DEPTH: '10000', ...(redisUrl ? { REDIS_URL: redisUrl } : {}) });

let jobCounter = 0;
function turnJob(o: ServiceOptions, hash: string): TurnJobV1 {
  const prompts = o.ask.prompts.map((p) => ({ ...p })) as TurnJobV1['prompts'];
  return {
    v: 1, id: `bench-${++jobCounter}-${randomUUID().slice(0, 8)}`, conversationId: `bench:c:${jobCounter}`,
    image: { hash, ...o.image }, task: 'chat', text: o.ask.text, prompts, history: [], render: { legend: false },
  };
}

/** Milliseconds of one job: put the image, enqueue, wait for the result. */
async function viaQueue(o: ServiceOptions, queue: TurnQueue, blobs: BlobStore, image: Uint8Array): Promise<number> {
  const t0 = performance.now();
  const hash = createHash('sha256').update(image).digest('hex');
  await blobs.put(hash, image, 600);
  const job = turnJob(o, hash);
  await queue.enqueue(job);
  await queue.wait(job.id);
  return performance.now() - t0;
}

/** Milliseconds of the same work without the service: model in this thread, overlay, RLE. */
async function direct(o: ServiceOptions, model: OmgLlava, image: Uint8Array): Promise<number> {
  const t0 = performance.now();
  const answer = await (await model.conversation(image)).ask(o.ask.text, { prompts: o.ask.prompts });
  if (answer.segments.length) await renderOverlay(image, answer.segments.map((s, k) => ({ n: k + 1, mask: s.mask })));
  answer.segments.forEach((s) => rleEncode(s.mask));
  return performance.now() - t0;
}

const overhead = (turn: Summary, base: Summary): PathResult =>
  ({ turn, overheadMs: turn.median - base.median, overheadShare: (turn.median - base.median) / base.median });

const NOOP_RESULT: TurnResultV1 = { v: 1, text: '', raw: '', segments: [], overlay: null, timings: {}, usage: { promptTokens: 0, newTokens: 0, cachedTokens: 0 } };
const noop: ProcessTurn = async () => NOOP_RESULT;

function memoryQueue(config: Config, processTurn: ProcessTurn): MemoryTurnQueue {
  return new MemoryTurnQueue({ maxDepth: config.MAX_QUEUE_DEPTH, timeoutMs: config.JOB_TIMEOUT_MS, attempts: 1 },
    { processTurn, logger: createLogger(config), metrics: createMetrics() });
}

/** A BullMQ queue and `workers` consumers in this process, each with its processor. */
async function bullmq(config: Config, processors: ProcessTurn[]) {
  const prefix = `omgbench-${randomUUID().slice(0, 8)}`;
  const deps = { logger: createLogger(config), metrics: createMetrics() };
  const queue = new BullTurnQueue(config, deps, { prefix });
  const workers: TurnWorker[] = [];
  for (const processTurn of processors) workers.push(await startWorker(config, { ...deps, processTurn }, { prefix }));
  return { queue, close: async () => { await Promise.all(workers.map((w) => w.close())); await queue.close(); } };
}

/** Per-job latency of a queue whose processor does nothing. */
async function queueOnly(o: ServiceOptions, queue: TurnQueue, blobs: BlobStore): Promise<Summary> {
  const tiny = new Uint8Array(1);
  const times: number[] = [];
  for (let i = 0; i < o.queueJobs + 5; i++) times.push(await viaQueue(o, queue, blobs, tiny));
  return summarize(times.slice(5));
}

export async function benchService(o: ServiceOptions): Promise<ServiceResult> {
  const config = silentConfig(o.redisUrl);
  const model = await OmgLlava.load(o.bundle, { provider: 'cpu', threads: o.threads });
  const clients = [await InferenceClient.start(o.bundle, { provider: 'cpu', threads: o.threads })];
  const redis = o.redisUrl ? new Redis(o.redisUrl) : null;
  const closers: (() => Promise<void>)[] = [];
  try {
    const processor = (blobs: BlobStore, client: InferenceClient) => createProcessor({ model: client, blobs, metrics: createMetrics(), overlayTtlSec: 600 });
    const memBlobs = new MemoryBlobStore({ defaultTtlSec: 600, maxBytes: 512 * 1024 * 1024 });
    const memQueue = memoryQueue(config, processor(memBlobs, clients[0]!));
    closers.push(() => memQueue.close());
    const redisBlobs = redis && new RedisBlobStore(redis, { prefix: `omgbench-${randomUUID().slice(0, 8)}`, defaultTtlSec: 600 });
    const bull = redisBlobs && (await bullmq(config, [processor(redisBlobs, clients[0]!)]));
    if (bull) closers.push(bull.close);

    // The paths take turns job by job, so that the machine's changing load falls on all of them alike.
    const times = { direct: [] as number[], memory: [] as number[], bullmq: [] as number[] };
    for (let i = 0; i < o.warmup + o.reps; i++) {
      const keep = i >= o.warmup;
      const d = await direct(o, model, await o.nextImage());
      const m = await viaQueue(o, memQueue, memBlobs, await o.nextImage());
      const b = bull && redisBlobs ? await viaQueue(o, bull.queue, redisBlobs, await o.nextImage()) : NaN;
      if (keep) { times.direct.push(d); times.memory.push(m); times.bullmq.push(b); }
    }
    const directTurn = summarize(times.direct);

    const noopMem = memoryQueue(config, noop);
    closers.push(() => noopMem.close());
    const memOnly = await queueOnly(o, noopMem, memBlobs);
    let bullOnly: Summary | null = null;
    const throughput: ServiceResult['throughput'] = [];
    if (redisBlobs) {
      const noopBull = await bullmq(config, [noop]);
      closers.push(noopBull.close);
      bullOnly = await queueOnly(o, noopBull.queue, redisBlobs);
      clients.push(await InferenceClient.start(o.bundle, { provider: 'cpu', threads: o.threads }));
      for (const workers of [1, 2]) {
        const b = await bullmq(config, clients.slice(0, workers).map((c) => processor(redisBlobs, c)));
        closers.push(b.close);
        const jobs: TurnJobV1[] = [];
        for (let i = 0; i < o.throughputJobs; i++) {
          const image = await o.nextImage();
          const hash = createHash('sha256').update(image).digest('hex');
          await redisBlobs.put(hash, image, 600);
          jobs.push(turnJob(o, hash));
        }
        const t0 = performance.now();
        await Promise.all(jobs.map((j) => b.queue.enqueue(j)));
        await Promise.all(jobs.map((j) => b.queue.wait(j.id)));
        throughput.push({ workers, jobs: jobs.length, jobsPerSecond: (jobs.length / (performance.now() - t0)) * 1000 });
      }
    }
    return {
      direct: directTurn, memory: overhead(summarize(times.memory), directTurn),
      bullmq: bull ? overhead(summarize(times.bullmq), directTurn) : null,
      queueOnly: { memory: memOnly, bullmq: bullOnly }, throughput,
    };
  } finally {
    for (const close of closers.reverse()) await close();
    await Promise.all([model.dispose(), ...clients.map((c) => c.dispose())]);
    redis?.disconnect();
  }
}
