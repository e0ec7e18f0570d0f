// One attempt of a turn, the same for the in-process queue and BullMQ workers: a wall-clock limit, cancellation
// through the caller's AbortController, and a short grace period so that an aborted turn stops before the next
// one starts (two turns must never share the model).
import { omgError, toOmgError, type OmgError } from '../errors.js';
import type { ProgressEvent, TurnJobV1, TurnResultV1 } from './job.js';
import type { ProcessTurn } from './queue.js';

export interface AttemptOptions {
  controller: AbortController; // abort with an OmgError (e.g. OMG_ERR_CANCELLED) to stop the turn
  timeoutMs: number;
  abandonAfterMs: number; // how long an aborted turn may take to stop
  emit: (ev: ProgressEvent) => void;
}

/** Resolves with the result or rejects with an OmgError: the abort reason when aborted, else the turn's own error. */
export async function runAttempt(processTurn: ProcessTurn, job: TurnJobV1, opts: AttemptOptions): Promise<TurnResultV1> {
  const { controller } = opts;
  const { signal } = controller;
  const timer = setTimeout(() => controller.abort(omgError('OMG_ERR_TIMEOUT')), opts.timeoutMs);
  let onAbort = () => {};
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason as OmgError);
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
  });
  // Started inside a promise chain, so that even a synchronous throw becomes a rejection handled below.
  const work = Promise.resolve().then(() =>
    processTurn(job, {
      signal,
      emit: (ev) => {
        if (!signal.aborted) opts.emit(ev);
      },
    }),
  );
  try {
    return await Promise.race([work, aborted]);
  } catch (err) {
    if (!signal.aborted) throw toOmgError(err);
    // Only waiting for the turn to stop: its own outcome no longer matters, the abort reason is the answer.
    const stopped = work.then(
      () => undefined,
      () => undefined,
    );
    await Promise.race([stopped, new Promise((resolve) => setTimeout(resolve, opts.abandonAfterMs).unref())]);
    throw signal.reason as OmgError;
  } finally {
    clearTimeout(timer);
    signal.removeEventListener('abort', onAbort);
  }
}
