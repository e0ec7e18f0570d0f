// The in-process queue (no Redis): FIFO, one turn at a time, with the same guarantees as the BullMQ path:
// a job id runs once, cancel removes or aborts, a timeout aborts, retryable failures retry with backoff.
import { omgError, type OmgError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { runAttempt } from './attempt.js';
import type { ProgressEvent, TurnJobV1, TurnResultV1 } from './job.js';
import type { ProcessTurn, TurnQueue } from './queue.js';

export interface MemoryQueueOptions {
  maxDepth: number;
  timeoutMs: number;
  attempts: number;
  backoffMs?: number; // first retry delay, doubled each time; default 1000
  keepFinished?: number; // finished jobs remembered for duplicates and late wait(); default 1000
  abandonAfterMs?: number; // how long a cancelled or timed-out turn may take to stop before the next one starts; default 5000
}

type State = 'queued' | 'delayed' | 'running' | 'done' | 'failed' | 'cancelled';

interface Entry {
  job: TurnJobV1;
  state: State;
  attempt: number;
  enqueuedAt: number;
  position: number; // last reported queue position
  watchers: Set<(ev: ProgressEvent) => void>;
  controller?: AbortController;
  retryTimer?: NodeJS.Timeout;
  result?: TurnResultV1;
  error?: OmgError;
}

const isFinished = (state: State) => state === 'done' || state === 'failed' || state === 'cancelled';

export class MemoryTurnQueue implements TurnQueue {
  private readonly entries = new Map<string, Entry>();
  private readonly waiting: Entry[] = [];
  private readonly finishedOrder: string[] = [];
  private running: Promise<void> | null = null;
  private closed = false;

  constructor(
    private readonly opts: MemoryQueueOptions,
    private readonly deps: { processTurn: ProcessTurn; logger: Logger; metrics: Metrics },
  ) {}

  async enqueue(job: TurnJobV1): Promise<{ position: number; duplicate: boolean }> {
    const known = this.entries.get(job.id);
    if (known) return { position: known.state === 'queued' ? known.position : 0, duplicate: true };
    if (this.closed) throw omgError('OMG_ERR_BUSY');
    const depth = this.activeCount();
    if (depth >= this.opts.maxDepth) throw omgError('OMG_ERR_BUSY', { limit: this.opts.maxDepth, position: depth + 1 });
    const entry: Entry = { job, state: 'queued', attempt: 0, enqueuedAt: Date.now(), position: 0, watchers: new Set() };
    this.entries.set(job.id, entry);
    this.waiting.push(entry);
    entry.position = this.waiting.length;
    this.updateDepth();
    // Start on a later turn of the event loop, so a caller can watch() right after enqueue() and miss nothing.
    setImmediate(() => this.pump());
    return { position: entry.position, duplicate: false };
  }

  watch(jobId: string, onEvent: (ev: ProgressEvent) => void): () => void {
    const entry = this.entries.get(jobId);
    if (!entry) return () => {};
    const current = this.currentEvent(entry);
    if (current) this.deliver(onEvent, current);
    if (!isFinished(entry.state)) entry.watchers.add(onEvent);
    return () => entry.watchers.delete(onEvent);
  }

  wait(jobId: string): Promise<TurnResultV1> {
    return new Promise((resolve, reject) => {
      if (!this.entries.has(jobId)) return reject(omgError('OMG_ERR_INTERNAL', { jobId, reason: 'unknown job' }));
      const off = this.watch(jobId, (ev) => {
        if (ev.type === 'done') resolve(ev.result);
        else if (ev.type === 'failed' || ev.type === 'cancelled') reject(this.entries.get(jobId)?.error ?? omgError('OMG_ERR_CANCELLED'));
        else return;
        queueMicrotask(() => off());
      });
    });
  }

  async cancel(jobId: string): Promise<boolean> {
    const entry = this.entries.get(jobId);
    if (!entry || isFinished(entry.state)) return false;
    if (entry.state === 'running') {
      entry.controller?.abort(omgError('OMG_ERR_CANCELLED'));
      return true;
    }
    clearTimeout(entry.retryTimer);
    this.removeWaiting(entry);
    this.finish(entry, { error: omgError('OMG_ERR_CANCELLED') });
    return true;
  }

  async depth(): Promise<number> {
    return this.activeCount();
  }

  /** Cancels waiting jobs and lets the running one finish. */
  async close(): Promise<void> {
    this.closed = true;
    for (const entry of [...this.entries.values()]) {
      if (entry.state === 'queued' || entry.state === 'delayed') await this.cancel(entry.job.id);
    }
    await this.running;
  }

  private pump(): void {
    if (this.running || this.closed) return;
    const next = this.waiting.shift();
    if (!next) return;
    this.reportPositions();
    this.running = this.run(next).finally(() => {
      this.running = null;
      this.pump();
    });
  }

  private async run(entry: Entry): Promise<void> {
    entry.state = 'running';
    entry.attempt++;
    if (entry.attempt === 1) this.deps.metrics.jobStageSeconds.observe({ stage: 'queue' }, (Date.now() - entry.enqueuedAt) / 1000);
    entry.controller = new AbortController();
    this.emit(entry, { type: 'started' });
    try {
      const result = await runAttempt(this.deps.processTurn, entry.job, {
        controller: entry.controller,
        timeoutMs: this.opts.timeoutMs,
        abandonAfterMs: this.opts.abandonAfterMs ?? 5000,
        emit: (ev) => this.emit(entry, ev),
      });
      this.finish(entry, { result });
    } catch (err) {
      this.failOrRetry(entry, err as OmgError);
    }
  }

  private failOrRetry(entry: Entry, error: OmgError): void {
    if (!error.retryable || entry.attempt >= this.opts.attempts) return this.finish(entry, { error });
    this.deps.logger.warn({ jobId: entry.job.id, attempt: entry.attempt, err: error }, 'turn failed, retrying');
    entry.state = 'delayed';
    const delay = (this.opts.backoffMs ?? 1000) * 2 ** (entry.attempt - 1);
    entry.retryTimer = setTimeout(() => {
      entry.state = 'queued';
      this.waiting.push(entry);
      entry.position = this.waiting.length;
      this.emit(entry, { type: 'queued', position: entry.position });
      this.pump();
    }, delay);
  }

  private finish(entry: Entry, outcome: { result: TurnResultV1 } | { error: OmgError }): void {
    if (isFinished(entry.state)) return;
    const { metrics, logger } = this.deps;
    if ('result' in outcome) {
      entry.state = 'done';
      entry.result = outcome.result;
    } else {
      entry.state = outcome.error.code === 'OMG_ERR_CANCELLED' ? 'cancelled' : 'failed';
      entry.error = outcome.error;
      metrics.errorsTotal.inc({ code: outcome.error.code });
      if (entry.state === 'failed') logger.warn({ jobId: entry.job.id, err: outcome.error }, 'turn failed');
    }
    metrics.jobsTotal.inc({ outcome: entry.state });
    metrics.jobStageSeconds.observe({ stage: 'total' }, (Date.now() - entry.enqueuedAt) / 1000);
    const event = this.currentEvent(entry);
    if (event) this.emit(entry, event);
    entry.watchers.clear();
    entry.controller = undefined;
    this.remember(entry.job.id);
    this.updateDepth();
  }

  /** The event that describes an entry's state to a new watcher. */
  private currentEvent(entry: Entry): ProgressEvent | null {
    switch (entry.state) {
      case 'queued':
        return { type: 'queued', position: entry.position };
      case 'running':
        return { type: 'started' };
      case 'done':
        return { type: 'done', result: entry.result! };
      case 'failed':
        return { type: 'failed', code: entry.error!.code, message: entry.error!.userMessage };
      case 'cancelled':
        return { type: 'cancelled' };
      case 'delayed':
        return null;
    }
  }

  private emit(entry: Entry, ev: ProgressEvent): void {
    for (const watcher of [...entry.watchers]) this.deliver(watcher, ev);
  }

  // A failing watcher must not break the queue loop; its error is logged, not lost.
  private deliver(watcher: (ev: ProgressEvent) => void, ev: ProgressEvent): void {
    try {
      watcher(ev);
    } catch (err) {
      this.deps.logger.error({ err, event: ev.type }, 'progress watcher threw');
    }
  }

  private removeWaiting(entry: Entry): void {
    const i = this.waiting.indexOf(entry);
    if (i >= 0) {
      this.waiting.splice(i, 1);
      this.reportPositions();
    }
  }

  private reportPositions(): void {
    this.waiting.forEach((entry, i) => {
      if (entry.position === i + 1) return;
      entry.position = i + 1;
      this.emit(entry, { type: 'queued', position: entry.position });
    });
  }

  private remember(jobId: string): void {
    this.finishedOrder.push(jobId);
    while (this.finishedOrder.length > (this.opts.keepFinished ?? 1000)) this.entries.delete(this.finishedOrder.shift()!);
  }

  private activeCount(): number {
    let n = 0;
    for (const entry of this.entries.values()) if (!isFinished(entry.state)) n++;
    return n;
  }

  private updateDepth(): void {
    this.deps.metrics.queueDepth.set(this.activeCount());
  }
}
