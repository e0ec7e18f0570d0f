// TEST DOUBLE. A scripted stand-in for the inference-backed processor (src/queue/processor.ts), so that the queue
// tests exercise queue mechanics only: ordering, duplicates, cancellation, retries, timeouts, restarts. The script of
// each job travels in its text, so a worker in another process behaves the same. The real processor is tested in
// processor.test.ts against the tiny-random bundle.
import { omgError } from '../../src/errors.js';
import type { TurnJobV1, TurnResultV1 } from '../../src/queue/job.js';
import type { ProcessTurn } from '../../src/queue/queue.js';

export interface Script {
  tokens?: string[];
  tokenMs?: number;
  /** Failure per attempt: 'bad-input' (unrecoverable), 'transient' (a plain Error), or null to succeed. */
  failures?: ('bad-input' | 'transient' | null)[];
  /** Ignore the abort signal (a turn that hangs). */
  deaf?: boolean;
}

export interface Call {
  jobId: string;
  attempt: number;
  emitted: number;
  stopped: 'done' | 'aborted' | 'failed' | 'running';
}

export function turnJob(id: string, script: Script = {}): TurnJobV1 {
  return {
    v: 1,
    id,
    conversationId: `test:${id}`,
    image: { hash: 'ab'.repeat(32), width: 4, height: 3 },
    task: 'chat',
    text: JSON.stringify(script),
    prompts: [],
    history: [],
    render: { legend: false },
  };
}

export function resultFor(tokens: string[]): TurnResultV1 {
  const text = tokens.join('');
  return {
    v: 1, text, raw: text, segments: [], overlay: null, timings: { decode: tokens.length },
    usage: { promptTokens: 1, newTokens: tokens.length, cachedTokens: 0 },
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export function fakeTurn(): { processTurn: ProcessTurn; calls: Call[] } {
  const calls: Call[] = [];
  const processTurn: ProcessTurn = async (job, { signal, emit }) => {
    const script = JSON.parse(job.text) as Script;
    const tokens = script.tokens ?? ['ok'];
    const call: Call = { jobId: job.id, attempt: calls.filter((c) => c.jobId === job.id).length + 1, emitted: 0, stopped: 'running' };
    calls.push(call);
    const failure = script.failures?.[call.attempt - 1];
    if (failure === 'bad-input') {
      call.stopped = 'failed';
      throw omgError('OMG_ERR_IMAGE_DECODE');
    }
    if (failure === 'transient') {
      call.stopped = 'failed';
      throw new Error('connection reset');
    }
    for (const delta of tokens) {
      await sleep(script.tokenMs ?? 1);
      if (signal.aborted && !script.deaf) {
        call.stopped = 'aborted';
        throw signal.reason;
      }
      emit({ type: 'text', delta });
      call.emitted++;
    }
    call.stopped = 'done';
    return resultFor(tokens);
  };
  return { processTurn, calls };
}
