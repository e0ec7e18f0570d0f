// Part 4: what the service adds to a turn. The same first turns (a new image each, so no cache hits) run
// (a) directly: OmgLlava in this thread, then the overlay and the RLE the worker would produce;
// (b) through the in-process queue and the worker processor, the model on a worker thread (InferenceClient);
// (c) through BullMQ on a loopback Redis, with the worker consumer in this process.
// Also the queues' own cost per job (a processor that does nothing) and BullMQ throughput with 1 and 2 worker
// processes (`npm run worker`, as deployed).
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { loadConfig, type Config } from '../src/config.js';
import { InferenceClient, OmgLlava } from '../src/inference/index.js';
import { createLogger } from '../src/log.js';
import { createMetrics } from '../src/metrics.js';
import { MemoryBlobStore, REDIS_PREFIX, RedisBlobStore, type BlobStore } from '../src/queue/blobs.js';
import { BullTurnQueue, startWorker, type TurnWorker } from '../src/queue/bullmq.js';
import type { TurnJobV1, TurnResultV1 } from '../src/queue/job.js';
import { MemoryTurnQueue } from '../src/queue/memory.js';
import { createProcessor } from '../src/queue/processor.js';
import type { ProcessTurn, TurnQueue } from '../src/queue/queue.js';
import { renderOverlay } from '../src/render/overlay.js';
import { encode as rleEncode } from '../src/render/rle.js';
import { Queue, QueueEvents, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import type { Ask } from './cases.js';
import { summarize, type Summary } from './stats.js';

export interface ServiceOptions {
  bundle: string; threads: number; reps: number; warmup: number; queueJobs: number; throughputJobs: number;
  redisUrl: string | null; // null: BullMQ parts are skipped
  ask: Ask; image: { width: number; height: number };
  nextImage: () => Promise<Uint8Array>; // a new image (new hash) per job
}

/** overheadMs: median of the per-round differences path - direct (the paths take turns, so the load is shared);
 * outsideProcessorMs: e2e minus the time spent inside the worker's processTurn, i.e. blob store, queue and events. */
export interface PathResult { turn: Summary; overheadMs: number; overheadShare: number; outsideProcessorMs: Summary }
export interface QueueOnly { perJob: Summary; enqueue: Summary } // ms, with a processor that does nothing
export interface ServiceResult {
  direct: Summary;
  memory: PathResult;
  bullmq: PathResult | null;
  queueOnly: { memory: QueueOnly; bullmq: QueueOnly | null; bareBullmq: Summary | null; redisPingMs: Summary | null };
  throughput: { workers: number; jobsPerSecond: number; jobs: number }[];
}

const WORKER_MAIN = fileURLToPath(new URL('../src/queue/worker-main.ts', import.meta.url));

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
async function viaQueue(o: ServiceOptions, queue: TurnQueue, blobs: BlobStore, image: Uint8Array): Promise<{ total: number; enqueue: number; id: string }> {
  const t0 = performance.now();
  const hash = createHash('sha256').update(image).digest('hex');
  await blobs.put(hash, image, 600);
  const job = turnJob(o, hash);
  const t1 = performance.now();
  await queue.enqueue(job);
  const enqueue = performance.now() - t1;
  await queue.wait(job.id);
  return { total: performance.now() - t0, enqueue, id: job.id };
}

/** A processor that also records how long each job spent inside it. */
function timedProcessor(inner: ProcessTurn, spent: Map<string, number>): ProcessTurn {
  return async (job, ctx) => {
    const t0 = performance.now();
    try {
      return await inner(job, ctx);
    } finally {
      spent.set(job.id, performance.now() - t0);
    }
  };
}

/** Milliseconds of the same work without the service: model in this thread, overlay, RLE. */
async function direct(o: ServiceOptions, model: OmgLlava, image: Uint8Array): Promise<number> {
  const t0 = performance.now();
  const answer = await (await model.conversation(image)).ask(o.ask.text, { prompts: o.ask.prompts });
  if (answer.segments.length) await renderOverlay(image, answer.segments.map((s, k) => ({ n: k + 1, mask: s.mask })));
  answer.segments.forEach((s) => rleEncode(s.mask));
  return performance.now() - t0;
}

function overhead(path: { total: number; id: string }[], direct: number[], spent: Map<string, number>): PathResult {
  const diff = summarize(path.map((p, i) => p.total - direct[i]!)).median;
  const base = summarize(direct).median;
  return {
    turn: summarize(path.map((p) => p.total)), overheadMs: diff, overheadShare: diff / base,
    outsideProcessorMs: summarize(path.map((p) => p.total - (spent.get(p.id) ?? NaN))),
  };
}

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
async function queueOnly(o: ServiceOptions, queue: TurnQueue, blobs: BlobStore): Promise<QueueOnly> {
  const tiny = new Uint8Array(1);
  const runs: { total: number; enqueue: number }[] = [];
  for (let i = 0; i < o.queueJobs + 5; i++) runs.push(await viaQueue(o, queue, blobs, tiny));
  const kept = runs.slice(5);
  return { perJob: summarize(kept.map((r) => r.total)), enqueue: summarize(kept.map((r) => r.enqueue)) };
}

/** BullMQ by itself, without our queue's checks and events: add -> no-op worker -> waitUntilFinished. The floor
 * the library sets on this machine for one job. */
async function bareBullmq(url: string, count: number): Promise<Summary> {
  const connection = { url }, prefix = `omgbare-${randomUUID().slice(0, 8)}`;
  const queue = new Queue('bare', { connection, prefix });
  const events = new QueueEvents('bare', { connection, prefix });
  const worker = new Worker('bare', async () => 1, { connection, prefix });
  await Promise.all([events.waitUntilReady(), worker.waitUntilReady()]);
  const times: number[] = [];
  try {
    for (let i = 0; i < count + 5; i++) {
      const t0 = performance.now();
      await (await queue.add('job', { i })).waitUntilFinished(events);
      times.push(performance.now() - t0);
    }
  } finally {
    await worker.close();
    await events.close();
    await queue.close();
  }
  return summarize(times.slice(5));
}

/** Loopback Redis round trip: the floor under every BullMQ step. */
async function redisPing(redis: Redis, count: number): Promise<Summary> {
  const times: number[] = [];
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    await redis.ping();
    times.push(performance.now() - t0);
  }
  return summarize(times);
}

/** `npm run worker` processes (the Redis deployment), started on our Redis and stopped by pid with SIGTERM. */
async function startWorkerProcesses(o: ServiceOptions, count: number): Promise<ChildProcess[]> {
  const env = { ...process.env, REDIS_URL: o.redisUrl!, MODEL_DIR: o.bundle, ORT_THREADS: String(o.threads), LOG_LEVEL: 'info' };
  return Promise.all(Array.from({ length: count }, () => new Promise<ChildProcess>((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', WORKER_MAIN], { env, stdio: ['ignore', 'pipe', 'inherit'] });
    let seen = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      seen += chunk.toString();
      if (seen.includes('"worker ready"')) resolve(child);
    });
    child.once('exit', (code) => reject(new Error(`worker exited with ${code} before it was ready: ${seen.slice(-500)}`)));
  })));
}

async function stopWorkerProcesses(children: ChildProcess[]): Promise<void> {
  await Promise.all(children.map((child) => new Promise<void>((resolve) => {
    if (child.exitCode !== null) return resolve();
    child.removeAllListeners('exit');
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  })));
}

/** Jobs per second of `workers` worker processes draining a batch enqueued at once. */
async function throughputOf(o: ServiceOptions, config: Config, blobs: BlobStore, workers: number): Promise<ServiceResult['throughput'][number]> {
  const children = await startWorkerProcesses(o, workers);
  const queue = new BullTurnQueue(config, { logger: createLogger(config), metrics: createMetrics() }, { prefix: REDIS_PREFIX });
  try {
    const jobs: TurnJobV1[] = [];
    for (let i = 0; i < o.throughputJobs; i++) {
      const image = await o.nextImage();
      const hash = createHash('sha256').update(image).digest('hex');
      await blobs.put(hash, image, 600);
      jobs.push(turnJob(o, hash));
    }
    const t0 = performance.now();
    await Promise.all(jobs.map((j) => queue.enqueue(j)));
    await Promise.all(jobs.map((j) => queue.wait(j.id)));
    return { workers, jobs: jobs.length, jobsPerSecond: (jobs.length / (performance.now() - t0)) * 1000 };
  } finally {
    await queue.close();
    await stopWorkerProcesses(children);
  }
}

export async function benchService(o: ServiceOptions): Promise<ServiceResult> {
  const config = silentConfig(o.redisUrl);
  const model = await OmgLlava.load(o.bundle, { provider: 'cpu', threads: o.threads });
  const client = await InferenceClient.start(o.bundle, { provider: 'cpu', threads: o.threads });
  const redis = o.redisUrl ? new Redis(o.redisUrl) : null;
  const closers: (() => Promise<void>)[] = [];
  try {
    const spent = new Map<string, number>();
    const processor = (blobs: BlobStore, client: InferenceClient) =>
      timedProcessor(createProcessor({ model: client, blobs, metrics: createMetrics(), overlayTtlSec: 600 }), spent);
    const memBlobs = new MemoryBlobStore({ defaultTtlSec: 600, maxBytes: 512 * 1024 * 1024 });
    const memQueue = memoryQueue(config, processor(memBlobs, client));
    closers.push(() => memQueue.close());
    // The worker processes of the throughput part read images under REDIS_PREFIX; this Redis is the bench's own.
    const redisBlobs = redis && new RedisBlobStore(redis, { prefix: REDIS_PREFIX, defaultTtlSec: 600 });
    const bull = redisBlobs && (await bullmq(config, [processor(redisBlobs, client)]));
    if (bull) closers.push(bull.close);

    // The paths take turns job by job, so that the machine's changing load falls on all of them alike.
    const times = { direct: [] as number[], memory: [] as { total: number; id: string }[], bullmq: [] as { total: number; id: string }[] };
    for (let i = 0; i < o.warmup + o.reps; i++) {
      const keep = i >= o.warmup;
      const d = await direct(o, model, await o.nextImage());
      const m = await viaQueue(o, memQueue, memBlobs, await o.nextImage());
      const b = bull && redisBlobs ? await viaQueue(o, bull.queue, redisBlobs, await o.nextImage()) : null;
      if (!keep) continue;
      times.direct.push(d);
      times.memory.push(m);
      if (b) times.bullmq.push(b);
    }
    const directTurn = summarize(times.direct);

    const noopMem = memoryQueue(config, noop);
    closers.push(() => noopMem.close());
    const memOnly = await queueOnly(o, noopMem, memBlobs);
    let bullOnly: QueueOnly | null = null;
    const throughput: ServiceResult['throughput'] = [];
    if (redisBlobs) {
      const noopBull = await bullmq(config, [noop]);
      closers.push(noopBull.close);
      bullOnly = await queueOnly(o, noopBull.queue, redisBlobs);
      for (const workers of [1, 2]) throughput.push(await throughputOf(o, config, redisBlobs, workers));
    }
    return {
      direct: directTurn, memory: overhead(times.memory, times.direct, spent),
      bullmq: bull ? overhead(times.bullmq, times.direct, spent) : null,
      queueOnly: {
        memory: memOnly, bullmq: bullOnly,
        bareBullmq: o.redisUrl ? await bareBullmq(o.redisUrl, o.queueJobs) : null,
        redisPingMs: redis ? await redisPing(redis, 50) : null,
      },
      throughput,
    };
  } finally {
    for (const close of closers.reverse()) await close();
    await Promise.all([model.dispose(), client.dispose()]);
    redis?.disconnect();
  }
}
