// The Redis path: a BullMQ queue shared by any number of service processes and workers.
// - The job id is the deterministic turn id, so a redelivered platform event finds its job instead of adding one.
// - Workers stream progress with job.updateProgress; the service reads one ordered event stream (QueueEvents).
// - Cancel = a Redis key (checked when a turn starts) + a pub/sub message (aborts a running turn between tokens)
//   + removal while still waiting.
// - Bad input fails as UnrecoverableError (never retried); transient failures retry with exponential backoff.
// - A worker that dies leaves a lock that expires; another worker's stalled check runs the job again.
import { Job, Queue, QueueEvents, UnrecoverableError, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import type { Config } from '../config.js';
import { catalogue, isErrorCode, omgError, OmgError, type ErrorCode } from '../errors.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { runAttempt } from './attempt.js';
import { REDIS_PREFIX } from './blobs.js';
import { parseTurnJob, type ProgressEvent, type TurnJobV1, type TurnResultV1 } from './job.js';
import type { ProcessTurn, QueueDeps, TurnQueue } from './queue.js';

const QUEUE_NAME = 'turns';
const FINISHED_TTL_S = 24 * 3600; // how long finished jobs (and cancel marks) answer duplicates

export interface BullOptions {
  prefix?: string; // Redis key prefix, default REDIS_PREFIX; tests use a fresh one each
  backoffMs?: number; // first retry delay, doubled each attempt; default 1000
}

const keys = (prefix: string) => ({
  cancel: (jobId: string) => `${prefix}:${QUEUE_NAME}:cancel:${jobId}`,
  cancelChannel: `${prefix}:${QUEUE_NAME}:cancel`,
});

/** A failed job's reason is the OmgError message "CODE: user message"; anything else is an internal error. */
export function errorFromReason(reason: string | undefined): OmgError {
  const match = /^(OMG_ERR_[A-Z_]+): (.*)$/s.exec(reason ?? '');
  const code = match?.[1];
  if (!match || !isErrorCode(code)) return omgError('OMG_ERR_INTERNAL', { reason });
  return new OmgError(code, match[2]!, catalogue[code as ErrorCode].retryable);
}

const terminalEvent = (err: OmgError): ProgressEvent =>
  err.code === 'OMG_ERR_CANCELLED' ? { type: 'cancelled' } : { type: 'failed', code: err.code, message: err.userMessage };

interface Watcher {
  onEvent: (ev: ProgressEvent) => void;
  live: boolean; // a stream event arrived, so the state read at subscription time is stale
  started: boolean; // no more 'queued' positions after 'started'
  position: number;
  last?: ProgressEvent['type'];
}

export class BullTurnQueue implements TurnQueue {
  private readonly queue: Queue;
  private readonly redis: Redis;
  private readonly keys: ReturnType<typeof keys>;
  private readonly watchers = new Map<string, Set<Watcher>>();
  private readonly ready: Promise<QueueEvents>;
  private refreshing: Promise<void> | null = null;
  private refreshAgain = false;

  constructor(
    private readonly config: Config,
    private readonly deps: QueueDeps,
    opts: BullOptions = {},
  ) {
    const prefix = opts.prefix ?? REDIS_PREFIX;
    this.keys = keys(prefix);
    const connection = { url: config.REDIS_URL };
    this.queue = new Queue(QUEUE_NAME, {
      connection,
      prefix,
      defaultJobOptions: {
        attempts: config.JOB_ATTEMPTS,
        backoff: { type: 'exponential', delay: opts.backoffMs ?? 1000 },
        removeOnComplete: { age: FINISHED_TTL_S },
        removeOnFail: { age: FINISHED_TTL_S },
      },
    });
    this.redis = new Redis(config.REDIS_URL!);
    // Connection errors are reported here (and retried by the clients) instead of crashing the process.
    this.queue.on('error', (err) => deps.logger.error({ err }, 'queue error'));
    this.redis.on('error', (err) => deps.logger.error({ err }, 'redis error'));
    this.ready = this.listen(prefix, connection);
  }

  /** Reads the event stream from the Redis server's current time, so nothing between start-up and the first read is lost. */
  private async listen(prefix: string, connection: { url?: string }): Promise<QueueEvents> {
    const [seconds, micros] = await this.redis.time();
    const lastEventId = `${Number(seconds) * 1000 + Math.floor(Number(micros) / 1000)}-0`;
    const events = new QueueEvents(QUEUE_NAME, { connection, prefix, lastEventId });
    events.on('active', ({ jobId }) => {
      this.dispatch(jobId, { type: 'started' });
      this.refreshPositions();
    });
    events.on('progress', ({ jobId, data }) => this.dispatch(jobId, data as ProgressEvent));
    events.on('completed', ({ jobId, returnvalue }) => this.dispatch(jobId, { type: 'done', result: returnvalue as unknown as TurnResultV1 }));
    events.on('failed', ({ jobId, failedReason }) => this.dispatch(jobId, terminalEvent(errorFromReason(failedReason))));
    events.on('removed', ({ jobId }) => {
      this.dispatch(jobId, { type: 'cancelled' });
      this.refreshPositions();
    });
    events.on('waiting', () => this.refreshPositions());
    events.on('error', (err) => this.deps.logger.error({ err }, 'queue events error'));
    await events.waitUntilReady();
    return events;
  }

  async enqueue(job: TurnJobV1): Promise<{ position: number; duplicate: boolean }> {
    await this.ready;
    if ((await this.queue.getJob(job.id)) || (await this.redis.exists(this.keys.cancel(job.id)))) {
      return { position: await this.positionOf(job.id), duplicate: true };
    }
    const depth = await this.depth();
    if (depth >= this.config.MAX_QUEUE_DEPTH) throw omgError('OMG_ERR_BUSY', { limit: this.config.MAX_QUEUE_DEPTH, position: depth + 1 });
    await this.queue.add(QUEUE_NAME, job, { jobId: job.id });
    return { position: await this.positionOf(job.id), duplicate: false };
  }

  watch(jobId: string, onEvent: (ev: ProgressEvent) => void): () => void {
    const watcher: Watcher = { onEvent, live: false, started: false, position: 0 };
    const set = this.watchers.get(jobId) ?? new Set();
    set.add(watcher);
    this.watchers.set(jobId, set);
    void this.currentEvent(jobId).then(
      (ev) => {
        if (ev && ev !== 'unknown' && !watcher.live && set.has(watcher)) this.deliver(jobId, watcher, ev);
      },
      (err: unknown) => this.deps.logger.error({ err, jobId }, 'reading job state failed'),
    );
    return () => this.unwatch(jobId, watcher);
  }

  wait(jobId: string): Promise<TurnResultV1> {
    return new Promise((resolve, reject) => {
      const off = this.watch(jobId, (ev) => {
        if (ev.type === 'done') resolve(ev.result);
        else if (ev.type === 'cancelled') reject(omgError('OMG_ERR_CANCELLED'));
        else if (ev.type === 'failed') reject(errorFromReason(`${ev.code}: ${ev.message}`));
        else return;
        off();
      });
      // An id this queue has never seen would otherwise wait forever.
      this.currentEvent(jobId).then((ev) => {
        if (ev === 'unknown') {
          off();
          reject(omgError('OMG_ERR_INTERNAL', { jobId, reason: 'unknown job' }));
        }
      }, reject);
    });
  }

  async cancel(jobId: string): Promise<boolean> {
    const job = await this.queue.getJob(jobId);
    if (!job) return false;
    const state = await job.getState();
    if (state === 'completed' || state === 'failed' || state === 'unknown') return false;
    await this.redis.set(this.keys.cancel(jobId), '1', 'EX', FINISHED_TTL_S);
    await this.redis.publish(this.keys.cancelChannel, jobId);
    if (state !== 'active') {
      // Fails only if a worker took the job meanwhile; that worker then sees the cancel key and stops.
      await job.remove().catch((err: unknown) => this.deps.logger.debug({ err, jobId }, 'cancel: job no longer removable'));
    }
    return true;
  }

  async depth(): Promise<number> {
    const counts = await this.queue.getJobCounts('wait', 'active', 'delayed', 'prioritized');
    const total = Object.values(counts).reduce((a, b) => a + b, 0);
    this.deps.metrics.queueDepth.set(total);
    return total;
  }

  async close(): Promise<void> {
    const events = await this.ready;
    await events.close();
    await this.queue.close();
    await this.redis.quit();
  }

  /** The event that describes a job's state now, for a watcher that subscribes late. */
  private async currentEvent(jobId: string): Promise<ProgressEvent | 'unknown' | null> {
    // The state first, then the job: a job read just before it finished would carry no return value (or reason) yet.
    const state = await this.queue.getJobState(jobId);
    switch (state) {
      case 'unknown':
        return (await this.redis.exists(this.keys.cancel(jobId))) ? { type: 'cancelled' } : 'unknown';
      case 'waiting':
      case 'prioritized':
        return { type: 'queued', position: await this.positionOf(jobId) };
      case 'active':
        return { type: 'started' };
      case 'completed':
      case 'failed': {
        const job = await this.queue.getJob(jobId);
        if (!job) return null; // removed meanwhile (cancelled): the stream reports it
        return state === 'completed' ? { type: 'done', result: job.returnvalue as TurnResultV1 } : terminalEvent(errorFromReason(job.failedReason));
      }
      default:
        return null; // delayed (waiting for a retry): the next event will tell
    }
  }

  /** 1-based position in the waiting list, 0 when not waiting. */
  private async positionOf(jobId: string): Promise<number> {
    const waiting = await this.queue.getRanges(['wait'], 0, -1, true);
    return waiting.indexOf(jobId) + 1;
  }

  private dispatch(jobId: string, ev: ProgressEvent): void {
    for (const watcher of this.watchers.get(jobId) ?? []) {
      watcher.live = true;
      this.deliver(jobId, watcher, ev);
    }
  }

  private deliver(jobId: string, watcher: Watcher, ev: ProgressEvent): void {
    if (ev.type === 'queued') {
      if (watcher.started || ev.position === watcher.position || ev.position === 0) return;
      watcher.position = ev.position;
    }
    // The state read at subscription and the stream can both report the same start; a second 'started' in a row says nothing.
    if (ev.type === 'started' && watcher.last === 'started') return;
    if (ev.type === 'started') watcher.started = true;
    watcher.last = ev.type;
    try {
      watcher.onEvent(ev);
    } catch (err) {
      // A failing watcher must not stop the event stream; its error is logged, not lost.
      this.deps.logger.error({ err, jobId, event: ev.type }, 'progress watcher threw');
    }
    if (ev.type === 'done' || ev.type === 'failed' || ev.type === 'cancelled') this.unwatch(jobId, watcher);
  }

  private unwatch(jobId: string, watcher: Watcher): void {
    const set = this.watchers.get(jobId);
    set?.delete(watcher);
    if (set?.size === 0) this.watchers.delete(jobId);
  }

  /** Recomputes the positions of watched waiting jobs after the waiting list changed; one refresh at a time. */
  private refreshPositions(): void {
    if (this.refreshing) {
      this.refreshAgain = true;
      return;
    }
    const waitingWatched = [...this.watchers].filter(([, set]) => [...set].some((w) => !w.started));
    if (waitingWatched.length === 0) return;
    this.refreshing = this.queue
      .getRanges(['wait'], 0, -1, true)
      .then((waiting) => {
        for (const [jobId, set] of waitingWatched) {
          const position = waiting.indexOf(jobId) + 1;
          for (const watcher of set) this.deliver(jobId, watcher, { type: 'queued', position });
        }
      })
      .catch((err: unknown) => this.deps.logger.error({ err }, 'refreshing queue positions failed'))
      .finally(() => {
        this.refreshing = null;
        if (this.refreshAgain) {
          this.refreshAgain = false;
          this.refreshPositions();
        }
      });
  }
}

export interface WorkerOptions {
  prefix?: string;
  lockDurationMs?: number; // how soon a dead worker's job is taken over; default 30000
  stalledIntervalMs?: number; // default 30000
  abandonAfterMs?: number; // grace for an aborted turn to stop; default 5000
}

export interface TurnWorker {
  /** Finishes the current turn, then stops taking jobs. */
  close(): Promise<void>;
}

/** A worker process's consumer: one turn at a time, cancellable between tokens, bounded by JOB_TIMEOUT_MS. */
export async function startWorker(
  config: Config,
  deps: { processTurn: ProcessTurn; logger: Logger; metrics: Metrics },
  opts: WorkerOptions = {},
): Promise<TurnWorker> {
  const prefix = opts.prefix ?? REDIS_PREFIX;
  const k = keys(prefix);
  const redis = new Redis(config.REDIS_URL!);
  const subscriber = new Redis(config.REDIS_URL!);
  for (const client of [redis, subscriber]) client.on('error', (err) => deps.logger.error({ err }, 'redis error'));
  const running = new Map<string, AbortController>();
  await subscriber.subscribe(k.cancelChannel);
  subscriber.on('message', (_channel: string, jobId: string) => running.get(jobId)?.abort(omgError('OMG_ERR_CANCELLED')));

  const processJob = async (job: Job, _token?: string, bullSignal?: AbortSignal): Promise<TurnResultV1> => {
    const { logger, metrics } = deps;
    const jobId = job.id!;
    const controller = new AbortController();
    running.set(jobId, controller);
    bullSignal?.addEventListener('abort', () => controller.abort(omgError('OMG_ERR_CANCELLED')), { once: true });
    if (job.attemptsMade === 0) metrics.jobStageSeconds.observe({ stage: 'queue' }, ((job.processedOn ?? Date.now()) - job.timestamp) / 1000);
    // Progress writes are chained so that every 'text' event is in the stream before the 'completed' event.
    // Streaming is best effort: a failed write is logged and the turn goes on.
    let progress = Promise.resolve();
    try {
      if (await redis.exists(k.cancel(jobId))) throw omgError('OMG_ERR_CANCELLED');
      const turn = parseTurnJob(job.data);
      const result = await runAttempt(deps.processTurn, turn, {
        controller,
        timeoutMs: config.JOB_TIMEOUT_MS,
        abandonAfterMs: opts.abandonAfterMs ?? 5000,
        emit: (ev) => {
          progress = progress
            .then(() => job.updateProgress(ev))
            .catch((err: unknown) => logger.warn({ err, jobId }, 'progress update failed'));
        },
      });
      await progress;
      metrics.jobsTotal.inc({ outcome: 'done' });
      metrics.jobStageSeconds.observe({ stage: 'total' }, (Date.now() - job.timestamp) / 1000);
      return result;
    } catch (caught) {
      const err = caught instanceof OmgError ? caught : omgError('OMG_ERR_INTERNAL', undefined, caught);
      await progress;
      const final = !err.retryable || job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
      if (final) {
        metrics.jobsTotal.inc({ outcome: err.code === 'OMG_ERR_CANCELLED' ? 'cancelled' : 'failed' });
        metrics.errorsTotal.inc({ code: err.code });
      }
      logger.warn({ jobId, attempt: job.attemptsMade + 1, err }, final ? 'turn failed' : 'turn failed, will retry');
      throw err.retryable ? new Error(err.message, { cause: err }) : new UnrecoverableError(err.message);
    } finally {
      running.delete(jobId);
    }
  };

  const worker = new Worker(QUEUE_NAME, processJob, {
    connection: { url: config.REDIS_URL },
    prefix,
    concurrency: 1,
    lockDuration: opts.lockDurationMs ?? 30_000,
    stalledInterval: opts.stalledIntervalMs ?? 30_000,
  });
  worker.on('error', (err) => deps.logger.error({ err }, 'worker error'));
  await worker.waitUntilReady();

  let closing: Promise<void> | undefined;
  return {
    close() {
      closing ??= (async () => {
        await worker.close();
        await subscriber.quit();
        await redis.quit();
      })();
      return closing;
    },
  };
}
