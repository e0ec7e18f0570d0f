// The generation loop over embed.onnx and llm.onnx (omg-llava.md §8.4, §9.1–§9.2): splice the image block and the
// prompt embeddings into the token embeddings, prefill, then prepare -> run the llm -> last logits -> sample ->
// stream -> stop check -> update the cache, keeping the post-norm hidden state of every [SEG] fed as input.
import { omgError } from '../errors.js';
import type { ModelConfig } from './bundle.js';
import { kvNames } from './bundle.js';
import type { Sampler } from './sampler.js';
import { f32, float32, int64, type GraphSession, type Tensor } from './session.js';
import { IMAGE_ID, type ChatTokenizer } from './template.js';

/** The KV cache: tensors named exactly as llm.onnx's past_key_values.{i}.key/.value inputs, [1,H_kv,L_past,D_h]. */
export class KvCache {
  private constructor(readonly tensors: Record<string, Tensor>) {}

  /** An empty cache (L_past = 0) with the dims the graph declares; symbolic dims come from the manifest. */
  static empty(llm: GraphSession, config: ModelConfig): KvCache {
    const tensors: Record<string, Tensor> = {};
    const fallback = [1, config.llm.num_kv_heads, 0, config.llm.head_dim];
    for (const name of kvNames('past_key_values', config.llm.num_layers)) {
      const declared = llm.inputDims(name);
      const dims = fallback.map((d, i) => (i === 0 || i === 2 ? d : typeof declared[i] === 'number' && declared[i] > 0 ? declared[i] : d));
      tensors[name] = float32(new Float32Array(0), dims);
    }
    return new KvCache(tensors);
  }

  /** Cached length L_past: dim -2 of any entry. */
  seqLength(): number {
    const first = Object.values(this.tensors)[0];
    return first ? first.dims[first.dims.length - 2]! : 0;
  }

  bytes(): number {
    return Object.values(this.tensors).reduce((n, t) => n + t.data.byteLength, 0);
  }

  /** The next cache from llm outputs: present.* becomes past_key_values.*. */
  static fromOutputs(outputs: Record<string, Tensor>): KvCache {
    const tensors: Record<string, Tensor> = {};
    for (const [name, t] of Object.entries(outputs)) {
      if (name.startsWith('present.')) tensors[`past_key_values.${name.slice('present.'.length)}`] = t;
    }
    return new KvCache(tensors);
  }
}

export interface LlmStep { logits: Float32Array; hidden: Float32Array; cache: KvCache } // logits [V] (last position), hidden [T,D]

/** One llm.onnx call on inputs_embeds [1,T,D] after the cached L_past positions. */
export async function llmForward(llm: GraphSession, cache: KvCache, embeds: Float32Array, hiddenSize: number): Promise<LlmStep> {
  const t = embeds.length / hiddenSize;
  const past = cache.seqLength();
  const out = await llm.run({
    inputs_embeds: float32(embeds, [1, t, hiddenSize]),
    attention_mask: int64(new Array<number>(past + t).fill(1), [1, past + t]),
    position_ids: int64(Array.from({ length: t }, (_, i) => past + i), [1, t]),
    ...cache.tensors,
  });
  const logits = f32(out.logits, 'logits'); // [1,T,V]
  const v = logits.length / t;
  return { logits: logits.subarray((t - 1) * v), hidden: f32(out.last_hidden_state, 'last_hidden_state'), cache: KvCache.fromOutputs(out) };
}

/** Token ids -> embeddings [T,D] through embed.onnx. */
export async function embedIds(embed: GraphSession, ids: readonly number[]): Promise<Float32Array> {
  if (ids.length === 0) return new Float32Array(0);
  return f32((await embed.run({ input_ids: int64(ids, [1, ids.length]) })).inputs_embeds, 'inputs_embeds'); // [1,T,D]
}

/** What replaces placeholder ids: the image block [P+1+n,D] and the prompt embeddings in placeholder order, each [D]. */
export interface SpliceSources { block: Float32Array; prompts: Float32Array[] }

/**
 * inputs_embeds [T',D] for ids (the new part of the sequence): ordinary ids through embed.onnx, IMAGE_ID -> the whole
 * image block, each <region>/<mark> -> the next prompt embedding starting at `firstPrompt`.
 */
export async function spliceEmbeds(embed: GraphSession, ids: readonly number[], firstPrompt: number, src: SpliceSources,
  config: ModelConfig): Promise<Float32Array> {
  const d = config.llm.hidden_size, t = config.tokens;
  const isPrompt = (id: number) => id === t.region || id === t.mark;
  const table = await embedIds(embed, ids.filter((id) => id !== IMAGE_ID && !isPrompt(id)));
  const rows = ids.reduce((n, id) => n + (id === IMAGE_ID ? src.block.length / d : 1), 0);
  const out = new Float32Array(rows * d);
  let row = 0, next = 0, prompt = firstPrompt;
  for (const id of ids) {
    if (id === IMAGE_ID) {
      out.set(src.block, row * d);
      row += src.block.length / d;
      continue;
    }
    if (isPrompt(id)) {
      const e = src.prompts[prompt++];
      if (!e) throw omgError('OMG_ERR_PROMPT_MISMATCH', { placeholders: prompt, prompts: src.prompts.length });
      out.set(e, row * d);
    } else {
      out.set(table.subarray(next * d, (next + 1) * d), row * d);
      next++;
    }
    row++;
  }
  return out;
}

/**
 * Streams deltas of the visible answer (tags such as <p> and [SEG] removed by `visible`); waits while the text ends
 * in an incomplete UTF-8 sequence.
 */
class TextStreamer {
  private sent = '';
  constructor(private readonly tokenizer: ChatTokenizer, private readonly visible: (raw: string) => string,
    private readonly onText: (delta: string) => void) {}

  push(ids: readonly number[], final = false): void {
    const raw = this.tokenizer.decode(ids);
    if (!final && raw.endsWith('\uFFFD')) return;
    const text = this.visible(raw);
    if (text.length > this.sent.length && text.startsWith(this.sent)) {
      this.onText(text.slice(this.sent.length));
      this.sent = text;
    }
  }
}

export interface GenerateInput {
  llm: GraphSession; embed: GraphSession; tokenizer: ChatTokenizer; config: ModelConfig;
  cache: KvCache; inputsEmbeds: Float32Array; // [T,D] the new (not yet cached) part of the prompt
  sampler: Sampler; maxNewTokens: number; signal?: AbortSignal;
  onToken?: (delta: string) => void; visibleText?: (raw: string) => string; // what a reader sees of the raw answer so far
}

export interface GenerateOutput {
  ids: number[]; // generated ids, the stop id included when generation stopped on one
  segHidden: Float32Array[]; // one [D] per [SEG] that was fed as input, in order
  cache: KvCache; // covers the prompt and every generated id but the last
  promptLogits: Float32Array; // [V] at the last prompt position
  prefillMs: number; decodeMs: number;
}

function checkAborted(signal?: AbortSignal): void {
  if (signal?.aborted) throw omgError('OMG_ERR_CANCELLED');
}

export async function generate(g: GenerateInput): Promise<GenerateOutput> {
  const d = g.config.llm.hidden_size, seg = g.config.tokens.seg;
  const streamer = g.onToken ? new TextStreamer(g.tokenizer, g.visibleText ?? ((raw) => raw), g.onToken) : null;
  checkAborted(g.signal);
  let t0 = performance.now();
  let step = await llmForward(g.llm, g.cache, g.inputsEmbeds, d);
  const prefillMs = performance.now() - t0;
  const promptLogits = step.logits;
  t0 = performance.now();
  const ids: number[] = [];
  const segHidden: Float32Array[] = [];
  for (;;) {
    const id = g.sampler(step.logits);
    ids.push(id);
    const stop = g.tokenizer.stopIds.has(id);
    streamer?.push(stop ? ids.slice(0, -1) : ids);
    if (stop || ids.length >= g.maxNewTokens) break;
    checkAborted(g.signal);
    // Generated ids always use their embedding rows (<region> too; <mark> has no row and cannot be sampled).
    step = await llmForward(g.llm, step.cache, await embedIds(g.embed, [id]), d);
    // The [SEG] state is the one computed where [SEG] is the input (§9.2): this step's hidden [1,1,D].
    if (id === seg) segHidden.push(step.hidden.slice(0, d));
  }
  streamer?.push(g.tokenizer.stopIds.has(ids[ids.length - 1]!) ? ids.slice(0, -1) : ids, true);
  return { ids, segHidden, cache: step.cache, promptLogits, prefillMs, decodeMs: performance.now() - t0 };
}
