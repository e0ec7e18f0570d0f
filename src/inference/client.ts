// InferenceClient: the OmgLlava API over a worker thread (thread.ts), so generation never blocks the event loop.
// Conversations are ids on the worker side; AbortSignals are forwarded as abort messages.
import { Worker } from 'node:worker_threads';
import { OmgError, omgError } from '../errors.js';
import type { Manifest } from './bundle.js';
import type { Answer, AskOptions, HistoryTurn, LoadOptions, ModelStats, Timings } from './model.js';
import type { Region } from './panoptic.js';
import type { Provider } from './session.js';
import type { Reply, Request, Results } from './thread.js';

type Op = Request['op'];
type Payload<O extends Op> = Omit<Extract<Request, { op: O }>, 'id' | 'op'>;
interface Pending { resolve: (v: never) => void; reject: (e: OmgError) => void; onToken?: (delta: string) => void }

/**
 * The worker entry next to this file: thread.js when built; thread.ts when run from source (tsx, vitest), loaded
 * through tsx's loader registered inside the worker (Node 20 does not apply --import hooks to a worker's entry).
 */
function startWorker(): Worker {
  if (!import.meta.url.endsWith('.ts')) return new Worker(new URL('./thread.js', import.meta.url));
  const tsx = import.meta.resolve('tsx/esm/api');
  const entry = new URL('./thread.ts', import.meta.url).href;
  const boot = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); })`;
  return new Worker(boot, { eval: true });
}

export class RemoteChat {
  constructor(private readonly client: InferenceClient, readonly id: string) {}

  ask(text: string, opts: AskOptions = {}): Promise<Answer> {
    return this.client.ask(this.id, text, opts);
  }

  close(): Promise<void> {
    return this.client.call('closeChat', { chat: this.id }).then(() => undefined);
  }
}

export class InferenceClient {
  private nextId = 0;
  private readonly pending = new Map<number, Pending>();
  private failure: string | null = null; // why the worker thread is gone; later calls fail at once instead of hanging

  private constructor(private readonly worker: Worker, private readonly warn?: (msg: string) => void) {
    worker.on('message', (reply: Reply) => this.onReply(reply));
    // A crashed worker fails every call in flight; the queue may retry them (OMG_ERR_INTERNAL is retryable).
    const fail = (reason: string) => {
      this.failure ??= reason;
      for (const p of this.pending.values()) p.reject(omgError('OMG_ERR_INTERNAL', { reason }));
      this.pending.clear();
    };
    worker.on('error', (err) => fail(`inference worker failed: ${String(err)}`));
    worker.on('exit', (code) => fail(`inference worker exited with code ${code}`));
  }

  manifest!: Manifest;
  provider!: Provider;

  /** Starts a worker thread and loads the bundle there. */
  static async start(dir: string, opts: LoadOptions = {}): Promise<InferenceClient> {
    const { warn, ...rest } = opts;
    const client = new InferenceClient(startWorker(), warn);
    try {
      const { manifest, provider } = await client.call('load', { dir, opts: rest });
      client.manifest = manifest;
      client.provider = provider;
      return client;
    } catch (err) {
      await client.worker.terminate();
      throw err;
    }
  }

  private onReply(reply: Reply): void {
    if (reply.kind === 'warn') {
      this.warn?.(reply.message);
      return;
    }
    const p = this.pending.get(reply.id);
    if (!p) return;
    if (reply.kind === 'token') {
      p.onToken?.(reply.delta);
      return;
    }
    this.pending.delete(reply.id);
    if (reply.kind === 'result') p.resolve(reply.value as never);
    else p.reject(new OmgError(reply.error.code, reply.error.message, reply.error.retryable, reply.error.details));
  }

  /** @internal Sends one request and resolves with its typed result. */
  call<O extends Op>(op: O, payload: Payload<O>, onToken?: (delta: string) => void): Promise<Results[O]> & { id: number } {
    const id = ++this.nextId;
    const promise = new Promise<Results[O]>((resolve, reject) => {
      if (this.failure) return reject(omgError('OMG_ERR_INTERNAL', { reason: this.failure }));
      this.pending.set(id, { resolve: resolve as (v: never) => void, reject, onToken });
      this.worker.postMessage({ id, op, ...payload } as Request);
    });
    return Object.assign(promise, { id });
  }

  async conversation(image: Uint8Array, history: HistoryTurn[] = []): Promise<RemoteChat> {
    const { chat } = await this.call('conversation', { image, history });
    return new RemoteChat(this, chat);
  }

  /** @internal RemoteChat.ask(): the signal becomes an abort message for this request. */
  async ask(chat: string, text: string, opts: AskOptions): Promise<Answer> {
    if (opts.signal?.aborted) throw omgError('OMG_ERR_CANCELLED');
    const call = this.call('ask', { chat, text, prompts: opts.prompts, generation: opts.generation, stream: !!opts.onToken }, opts.onToken);
    const abort = () => this.worker.postMessage({ id: ++this.nextId, op: 'abort', target: call.id } satisfies Request);
    opts.signal?.addEventListener('abort', abort, { once: true });
    try {
      return await call;
    } finally {
      opts.signal?.removeEventListener('abort', abort);
    }
  }

  segmentEverything(image: Uint8Array): Promise<{ regions: Region[]; timings: Timings }> {
    return this.call('segmentEverything', { image });
  }

  stats(): Promise<ModelStats> {
    return this.call('stats', {});
  }

  /** Releases the model and stops the worker. */
  async dispose(): Promise<void> {
    await this.call('dispose', {});
    await this.worker.terminate();
  }
}
