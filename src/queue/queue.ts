// The queue the conversation service talks to. Two implementations behind one interface: BullMQ on Redis when
// REDIS_URL is set (workers run as separate processes, `npm run worker`), else an in-process queue that runs
// turns itself, one at a time.
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { BullTurnQueue } from './bullmq.js';
import type { ProgressEvent, TurnJobV1, TurnResultV1 } from './job.js';
import { MemoryTurnQueue } from './memory.js';

export interface TurnQueue {
  /** Adds a job; a job id seen before (queued, running or finished) is not run again: `duplicate` is true. Throws OMG_ERR_BUSY when full. */
  enqueue(job: TurnJobV1): Promise<{ position: number; duplicate: boolean }>;
  /** Progress events of one job in order; a finished job reports its outcome at once. Returns the unsubscribe function. */
  watch(jobId: string, onEvent: (ev: ProgressEvent) => void): () => void;
  /** The result; rejects with an OmgError (OMG_ERR_CANCELLED, OMG_ERR_TIMEOUT, ...). */
  wait(jobId: string): Promise<TurnResultV1>;
  /** Cancels a queued (removed) or running (aborted between tokens) job; false when it had already finished or is unknown. */
  cancel(jobId: string): Promise<boolean>;
  /** Jobs waiting or running. */
  depth(): Promise<number>;
  close(): Promise<void>;
}

/** What a worker does with one job. `emit` streams 'text' events; the queue itself reports queued/started/done/failed. */
export type ProcessTurn = (
  job: TurnJobV1,
  ctx: { signal: AbortSignal; emit: (ev: ProgressEvent) => void },
) => Promise<TurnResultV1>;

export interface QueueDeps {
  logger: Logger;
  metrics: Metrics;
  /** Runs turns for the in-process queue; with Redis the workers run them and this is not used. */
  processTurn?: ProcessTurn;
}

export function createQueue(config: Config, deps: QueueDeps): TurnQueue {
  if (config.REDIS_URL) return new BullTurnQueue(config, deps);
  if (!deps.processTurn) throw new Error('the in-process queue needs processTurn (or set REDIS_URL and run workers)');
  return new MemoryTurnQueue(
    { maxDepth: config.MAX_QUEUE_DEPTH, timeoutMs: config.JOB_TIMEOUT_MS, attempts: config.JOB_ATTEMPTS },
    { ...deps, processTurn: deps.processTurn },
  );
}
