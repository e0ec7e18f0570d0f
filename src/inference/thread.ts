// The worker_threads entry: one OmgLlava per worker, driven by the typed message protocol below, so inference never
// blocks the service's event loop. InferenceClient (client.ts) is the other end.
import { parentPort } from 'node:worker_threads';
import { isOmgError, omgError, type ErrorCode, type OmgError } from '../errors.js';
import type { Manifest } from './bundle.js';
import type { Region } from './panoptic.js';
import type { VisualPrompt } from './prompts.js';
import type { GenerationOptions } from './sampler.js';
import type { Provider } from './session.js';
import { OmgLlava, type Answer, type Chat, type HistoryTurn, type LoadOptions, type ModelStats, type Timings } from './model.js';

/** Requests by operation; every request carries an id that its replies repeat. */
export type Request = { id: number } & (
  | { op: 'load'; dir: string; opts: Omit<LoadOptions, 'warn'> }
  | { op: 'conversation'; image: Uint8Array; history: HistoryTurn[] }
  | { op: 'ask'; chat: string; text: string; prompts?: VisualPrompt[]; generation?: Partial<GenerationOptions>; stream: boolean }
  | { op: 'abort'; target: number } // cancels the ask with id `target`; no reply of its own
  | { op: 'closeChat'; chat: string }
  | { op: 'segmentEverything'; image: Uint8Array }
  | { op: 'stats' }
  | { op: 'dispose' }
);

/** What each operation resolves to. */
export interface Results {
  load: { manifest: Manifest; provider: Provider };
  conversation: { chat: string };
  ask: Answer;
  abort: null;
  closeChat: null;
  segmentEverything: { regions: Region[]; timings: Timings };
  stats: ModelStats;
  dispose: null;
}

export interface WireError { code: ErrorCode; message: string; retryable: boolean; details?: Record<string, unknown> }

export type Reply =
  | { id: number; kind: 'result'; value: Results[keyof Results] }
  | { id: number; kind: 'error'; error: WireError }
  | { id: number; kind: 'token'; delta: string }
  | { kind: 'warn'; message: string };

function wireError(err: unknown): WireError {
  // Unknown failures keep their message for the log (details), never for the user (message).
  const e: OmgError = isOmgError(err) ? err : omgError('OMG_ERR_INTERNAL', { reason: String(err) });
  return { code: e.code, message: e.userMessage, retryable: e.retryable, ...(e.details ? { details: e.details } : {}) };
}

const port = parentPort;
if (!port) throw new Error('thread.ts is a worker_threads entry; use InferenceClient to start it');

let model: OmgLlava | null = null;
// Open chats in creation order; the oldest are forgotten past the bound (their KV state stays in the model's
// byte-bounded cache, so a conversation rebuilt from the same history still continues from it).
const MAX_CHATS = 64;
const chats = new Map<string, Chat>();
const running = new Map<number, AbortController>();

function loaded(): OmgLlava {
  if (!model) throw omgError('OMG_ERR_INTERNAL', { reason: 'the model is not loaded; send "load" first' });
  return model;
}

async function handle(req: Request): Promise<Results[keyof Results]> {
  switch (req.op) {
    case 'load':
      model = await OmgLlava.load(req.dir, { ...req.opts, warn: (message) => port!.postMessage({ kind: 'warn', message } satisfies Reply) });
      return { manifest: model.manifest, provider: model.provider };
    case 'conversation': {
      const chat = await loaded().conversation(req.image, req.history);
      chats.set(chat.id, chat);
      for (const id of chats.keys()) if (chats.size > MAX_CHATS) chats.delete(id);
      return { chat: chat.id };
    }
    case 'ask': {
      const chat = chats.get(req.chat);
      if (!chat) throw omgError('OMG_ERR_INTERNAL', { reason: `unknown chat ${req.chat}; call conversation() first` });
      const controller = new AbortController();
      running.set(req.id, controller);
      try {
        return await chat.ask(req.text, {
          prompts: req.prompts, generation: req.generation, signal: controller.signal,
          onToken: req.stream ? (delta) => port!.postMessage({ id: req.id, kind: 'token', delta } satisfies Reply) : undefined,
        });
      } finally {
        running.delete(req.id);
      }
    }
    case 'abort':
      running.get(req.target)?.abort();
      return null;
    case 'closeChat':
      chats.get(req.chat)?.close();
      chats.delete(req.chat);
      return null;
    case 'segmentEverything':
      return loaded().segmentEverything(req.image);
    case 'stats':
      return loaded().stats();
    case 'dispose':
      await model?.dispose();
      model = null;
      chats.clear();
      return null;
  }
}

/** Mask buffers of a result move to the main thread instead of being copied (each mask owns its buffer). */
function transfers(value: Results[keyof Results]): ArrayBuffer[] {
  const masks = value && 'segments' in value ? value.segments.map((s) => s.mask) : value && 'regions' in value ? value.regions.map((r) => r.mask) : [];
  return [...new Set(masks.map((m) => m.data.buffer as ArrayBuffer))];
}

port.on('message', (req: Request) => {
  handle(req).then(
    (value) => { if (req.op !== 'abort') port.postMessage({ id: req.id, kind: 'result', value } satisfies Reply, transfers(value)); },
    (err: unknown) => port.postMessage({ id: req.id, kind: 'error', error: wireError(err) } satisfies Reply),
  );
});
