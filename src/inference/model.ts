// The stateful façade over the stateless stages: OmgLlava.load() opens a bundle, conversation() runs the image pass
// once (cached by image hash), and Chat.ask() reuses the image features and the KV prefix of earlier turns.
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { omgError } from '../errors.js';
import { parseAnswer, type AnswerTags, type Segment } from './answer.js';
import { GRAPH_NAMES, readBundle, type GraphName, type Manifest } from './bundle.js';
import { ByteLru, type CacheStats } from './caches.js';
import { generate, KvCache, spliceEmbeds } from './generate.js';
import { segmentEverything, type Region } from './panoptic.js';
import { masksFromLogits } from './postprocess.js';
import { decodeRgb, preprocess, type Geometry } from './preprocess.js';
import { encodePrompts, resolvePrompt, type VisualPrompt } from './prompts.js';
import { createSampler, type GenerationOptions } from './sampler.js';
import { decodeSeg } from './seg.js';
import { GraphSession, type Provider } from './session.js';
import { ChatTokenizer, IMAGE_ID } from './template.js';
import { imagePassBytes, runImagePass, type ImagePass } from './vision.js';

export interface LoadOptions { provider?: Provider; threads?: number; imageCacheBytes?: number; kvCacheBytes?: number; warn?: (msg: string) => void }
export interface HistoryTurn { text: string; prompts?: VisualPrompt[]; raw: string } // to rebuild a chat (e.g. after a restart)
export interface Timings { [stage: string]: number } // ms per stage, plus decodeTokens (a count)
export interface Answer {
  text: string; raw: string; segments: Segment[];
  usage: { promptTokens: number; newTokens: number; cachedTokens: number };
  timings: Timings;
}
export interface AskOptions {
  prompts?: VisualPrompt[]; signal?: AbortSignal; onToken?: (delta: string) => void; generation?: Partial<GenerationOptions>;
}
export interface ModelStats { imageCache: CacheStats; kvCache: CacheStats }

const MiB = 1 << 20;

/** Serialises model work: one turn at a time keeps the caches consistent and the cores for one graph run. */
class Mutex {
  private tail: Promise<unknown> = Promise.resolve();
  run<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.tail.then(fn, fn);
    this.tail = next.catch(() => undefined);
    return next;
  }
}

interface CachedImage { pass: ImagePass; geometry: Geometry }
/** A conversation state worth keeping: its history ids, prompt embeddings and the KV cache of the ids it fed. */
interface KvEntry { ids: number[]; promptEmbeds: Float32Array[]; fed: number[]; cache: KvCache }

/** One conversation's state at the id level: history ids (IMAGE_ID for the image block) and its visual prompts. */
interface ChatState {
  id: string; image: Uint8Array; hash: string; geometry: Geometry;
  key: string; // content key of the history so far (historyKey), under which its KvEntry is cached
  ids: number[]; prompts: VisualPrompt[]; promptEmbeds: Float32Array[]; // one [D] per prompt placeholder, in order
  imageTimings: Timings; // the image pass that conversation() ran, reported with the first turn
}

interface TurnRecord { text: string; prompts: VisualPrompt[]; raw: string } // prompts resolved to original pixels

/**
 * The key of a history: chained over the image hash and every turn's text, prompts and raw answer. A chat rebuilt
 * from the same history (a follow-up job on any conversation object) finds the cached state of the one that ran it.
 */
function historyKey(previous: string, turn: TurnRecord): string {
  const h = createHash('sha256').update(previous).update(JSON.stringify([turn.text, turn.raw]));
  for (const p of turn.prompts) {
    if (p.kind === 'mask') h.update(`mask ${p.mask.width}x${p.mask.height}`).update(p.mask.data);
    else h.update(JSON.stringify(p));
  }
  return h.digest('hex');
}

const entryBytes = (e: KvEntry) =>
  e.cache.bytes() + (e.ids.length + e.fed.length) * 8 + e.promptEmbeds.reduce((n, x) => n + x.byteLength, 0);

const isPrefix = (a: readonly number[], b: readonly number[]) => a.length <= b.length && a.every((v, i) => v === b[i]);

export class Chat {
  /** @internal Created by OmgLlava.conversation(). */
  constructor(private readonly model: OmgLlava, private readonly state: ChatState) {}

  get id(): string { return this.state.id; }

  /** One turn: the question may hold <region>/<mark> placeholders, filled by `prompts` in order. */
  ask(text: string, opts: AskOptions = {}): Promise<Answer> { return this.model.runTurn(this.state, text, opts); }

  /** Drops this conversation's KV cache. */
  close(): void { this.model.closeChat(this.state.key); }
}

export class OmgLlava {
  private readonly lock = new Mutex();
  private readonly images: ByteLru<CachedImage>;
  private readonly kv: ByteLru<KvEntry>;
  private readonly tags: AnswerTags;
  private chats = 0;
  private disposed = false;

  private constructor(
    readonly manifest: Manifest,
    readonly provider: Provider,
    private readonly sessions: Record<GraphName, GraphSession>,
    private readonly tokenizer: ChatTokenizer,
    opts: LoadOptions,
  ) {
    this.images = new ByteLru((opts.imageCacheBytes ?? 512 * MiB), (v) => imagePassBytes(v.pass));
    this.kv = new ByteLru((opts.kvCacheBytes ?? 1024 * MiB), entryBytes);
    const t = manifest.config.tokens, name = (id: number) => tokenizer.decode([id]);
    this.tags = { pOpen: name(t.p_open), pClose: name(t.p_close), seg: name(t.seg), other: tokenizer.specialStrings() };
  }

  /** Validates the bundle and opens its six graphs; `auto` resolves the provider once, on the first graph. */
  static async load(dir: string, opts: LoadOptions = {}): Promise<OmgLlava> {
    const bundle = await readBundle(dir);
    const tokenizer = new ChatTokenizer(bundle.tokenizerJson, bundle.manifest.config);
    let provider: Provider = opts.provider ?? 'cpu';
    const sessions = {} as Record<GraphName, GraphSession>;
    try {
      for (const name of GRAPH_NAMES) {
        const spec = bundle.graphs[name];
        sessions[name] = await GraphSession.create(join(dir, spec.file), spec, { provider, threads: opts.threads, warn: opts.warn });
        provider = sessions[name].provider;
      }
    } catch (err) {
      await Promise.all(Object.values(sessions).map((s) => s.dispose()));
      throw err;
    }
    return new OmgLlava(bundle.manifest, provider, sessions, tokenizer, opts);
  }

  private get config() { return this.manifest.config; }

  private checkOpen(): void {
    if (this.disposed) throw omgError('OMG_ERR_INTERNAL', { reason: 'the model was disposed; call OmgLlava.load() again' });
  }

  /** The image pass for encoded bytes, from the cache when this image was seen before. */
  private async imagePass(image: Uint8Array, hash: string, time: (stage: string, ms: number) => void): Promise<CachedImage> {
    const cached = this.images.get(hash);
    if (cached) return cached;
    const t0 = performance.now();
    const pre = preprocess(await decodeRgb(image), this.config);
    time('preprocess', performance.now() - t0);
    const pass = await runImagePass(this.sessions.vision, this.sessions.prior, pre.pixelValues, this.config, time);
    const entry = { pass, geometry: pre.geometry };
    this.images.set(hash, entry);
    return entry;
  }

  /**
   * Starts a conversation about an image (encoded bytes), optionally continuing earlier turns. A history this model
   * answered before continues from its cached ids and KV cache; otherwise it is re-tokenised from its texts.
   */
  conversation(image: Uint8Array, history: HistoryTurn[] = []): Promise<Chat> {
    return this.lock.run(async () => {
      this.checkOpen();
      const hash = createHash('sha256').update(image).digest('hex');
      const imageTimings: Timings = {};
      const { geometry } = await this.imagePass(image, hash, (stage, ms) => { imageTimings[stage] = ms; });
      const state: ChatState = {
        id: `chat-${++this.chats}`, image, hash, geometry, key: hash, ids: [], prompts: [], promptEmbeds: [], imageTimings,
      };
      for (const turn of history) {
        const prompts = (turn.prompts ?? []).map((p) => resolvePrompt(p, geometry));
        const turnIds = this.turnIds(state, turn.text, prompts);
        state.ids.push(...turnIds, ...this.tokenizer.closeAnswer(this.tokenizer.encodeTrusted(turn.raw)));
        state.prompts.push(...prompts);
        state.key = historyKey(state.key, { text: turn.text, prompts, raw: turn.raw });
      }
      const cached = history.length ? this.kv.get(state.key) : undefined;
      if (cached) Object.assign(state, { ids: cached.ids, promptEmbeds: cached.promptEmbeds });
      return new Chat(this, state);
    });
  }

  /** The ids of a new turn, checking that placeholders and prompts match. */
  private turnIds(state: ChatState, text: string, prompts: VisualPrompt[]): number[] {
    const ids = state.ids.length ? this.tokenizer.followUp(text) : this.tokenizer.firstTurn(text);
    const placeholders = this.tokenizer.placeholders(ids);
    if (placeholders !== prompts.length) throw omgError('OMG_ERR_PROMPT_MISMATCH', { placeholders, prompts: prompts.length });
    return ids;
  }

  /** @internal Chat.ask(): prompts -> splice -> generate -> [SEG] masks -> answer; commits the turn only on success. */
  runTurn(state: ChatState, text: string, opts: AskOptions): Promise<Answer> {
    return this.lock.run(async () => {
      this.checkOpen();
      if (opts.signal?.aborted) throw omgError('OMG_ERR_CANCELLED');
      const timings: Timings = { ...state.imageTimings };
      state.imageTimings = {};
      const time = (stage: string, ms: number) => { timings[stage] = (timings[stage] ?? 0) + ms; };
      const { pass, geometry } = await this.imagePass(state.image, state.hash, time);
      const turnPrompts = (opts.prompts ?? []).map((p) => resolvePrompt(p, geometry));
      const prompts = [...state.prompts, ...turnPrompts];
      const full = [...state.ids, ...this.turnIds(state, text, turnPrompts)];

      let t0 = performance.now();
      const promptEmbeds = await this.promptEmbeddings(state, prompts, pass, geometry);
      time('prompts', performance.now() - t0);
      const { cache, inputsEmbeds } = await this.prefillInputs(state, full, pass, promptEmbeds);
      const gen = this.generationOptions(opts.generation);
      const out = await generate({
        llm: this.sessions.llm, embed: this.sessions.embed, tokenizer: this.tokenizer, config: this.config,
        cache, inputsEmbeds, sampler: createSampler(gen), maxNewTokens: gen.maxNewTokens, signal: opts.signal, onToken: opts.onToken,
        visibleText: (partial) => parseAnswer(partial, [], this.tags).text,
      });
      time('prefill', out.prefillMs);
      time('decode', out.decodeMs);
      timings.decodeTokens = out.ids.length;

      t0 = performance.now();
      const logits = await decodeSeg(this.sessions.seg, pass.features, out.segHidden, this.config); // [N,1,M,M]
      time('seg', performance.now() - t0);
      t0 = performance.now();
      const masks = masksFromLogits(logits, this.config.mask_size, geometry);
      const raw = this.tokenizer.decode(this.tokenizer.stopIds.has(out.ids[out.ids.length - 1]!) ? out.ids.slice(0, -1) : out.ids);
      const answer = parseAnswer(raw, masks, this.tags);
      time('postprocess', performance.now() - t0);

      // Commit: the history gains this turn (answer closed by a stop id); the cache holds every id fed so far.
      const ids = [...full, ...this.tokenizer.closeAnswer(out.ids)];
      const key = historyKey(state.key, { text, prompts: turnPrompts, raw });
      this.kv.delete(state.key);
      Object.assign(state, { key, ids, prompts, promptEmbeds });
      this.kv.set(key, { ids, promptEmbeds, fed: [...full, ...out.ids.slice(0, -1)], cache: out.cache });
      const positions = full.length + (full.includes(IMAGE_ID) ? pass.blockLength - 1 : 0);
      return { ...answer, raw, timings, usage: { promptTokens: positions, newTokens: out.ids.length, cachedTokens: cache.seqLength() } };
    });
  }

  /** Prompt embeddings for every placeholder so far, one [D] each; only prompts not embedded before run prompt.onnx. */
  private async promptEmbeddings(state: ChatState, prompts: VisualPrompt[], pass: ImagePass, geometry: Geometry): Promise<Float32Array[]> {
    const missing = prompts.slice(state.promptEmbeds.length);
    const d = this.config.llm.hidden_size;
    const encoded = await encodePrompts(this.sessions.prompt, pass.features, missing, geometry); // [N,D]
    return [...state.promptEmbeds, ...missing.map((_, i) => encoded.slice(i * d, (i + 1) * d))];
  }

  /** The cache to continue from and inputs_embeds [T,D] for the ids it lacks: a cached prefix is prefilled no more. */
  private async prefillInputs(state: ChatState, full: number[], pass: ImagePass, prompts: Float32Array[]) {
    const kv = state.ids.length ? this.kv.get(state.key) : undefined;
    const reuse = kv !== undefined && isPrefix(kv.fed, full);
    const start = reuse ? kv.fed.length : 0;
    const cache = reuse ? kv.cache : KvCache.empty(this.sessions.llm, this.config);
    const inputsEmbeds = await spliceEmbeds(this.sessions.embed, full.slice(start),
      this.tokenizer.placeholders(full.slice(0, start)), { block: pass.block, prompts }, this.config);
    return { cache, inputsEmbeds };
  }

  /** The manifest's generation settings, overridden per call. */
  private generationOptions(overrides: Partial<GenerationOptions> = {}): GenerationOptions {
    const g = this.config.generation;
    return { maxNewTokens: g.max_new_tokens, doSample: g.do_sample, temperature: g.temperature, topK: g.top_k, topP: g.top_p, seed: 0, ...overrides };
  }

  /** @internal Chat.close(). */
  closeChat(key: string): void { this.kv.delete(key); }

  /** Panoptic regions from the image pass alone, numbered 1..n by decreasing area. */
  segmentEverything(image: Uint8Array): Promise<{ regions: Region[]; timings: Timings }> {
    return this.lock.run(async () => {
      this.checkOpen();
      const timings: Timings = {};
      const time = (stage: string, ms: number) => { timings[stage] = (timings[stage] ?? 0) + ms; };
      const hash = createHash('sha256').update(image).digest('hex');
      const { pass, geometry } = await this.imagePass(image, hash, time);
      const t0 = performance.now();
      const regions = segmentEverything(pass.features, this.config, geometry);
      time('postprocess', performance.now() - t0);
      return { regions, timings };
    });
  }

  stats(): ModelStats {
    return { imageCache: this.images.stats(), kvCache: this.kv.stats() };
  }

  dispose(): Promise<void> {
    return this.lock.run(async () => {
      if (this.disposed) return;
      this.disposed = true;
      await Promise.all(Object.values(this.sessions).map((s) => s.dispose()));
    });
  }
}
