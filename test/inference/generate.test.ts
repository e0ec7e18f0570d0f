import { describe, expect, it } from 'vitest';
import type { ModelConfig } from '../../src/inference/bundle.js';
import { generate, KvCache } from '../../src/inference/generate.js';
import { argmax } from '../../src/inference/sampler.js';
import type { GraphSession, Tensor } from '../../src/inference/session.js';
import type { ChatTokenizer } from '../../src/inference/template.js';

// A fake model with D = 2 and one layer: an input id's embedding is [id, 0]; the llm's hidden state is its input
// embedding (so a captured state tells which id was fed) and its next token follows a script.
const V = 10, SEG = 5, STOP = 9;
const config = { llm: { hidden_size: 2, num_layers: 1, num_kv_heads: 1, head_dim: 1 }, tokens: { seg: SEG } } as unknown as ModelConfig;

function fakes(script: number[]) {
  let step = 0;
  const embed = {
    run: async ({ input_ids }: Record<string, Tensor>) => {
      const ids = Array.from(input_ids!.data as BigInt64Array, Number);
      return { inputs_embeds: { type: 'float32', dims: [1, ids.length, 2], data: Float32Array.from(ids.flatMap((id) => [id, 0])) } };
    },
  };
  const llm = {
    inputDims: () => ['batch', 1, 'past', 1],
    run: async (feeds: Record<string, Tensor>) => {
      const x = feeds.inputs_embeds!.data as Float32Array;
      const t = x.length / 2;
      const past = feeds['past_key_values.0.key']!;
      const logits = new Float32Array(t * V);
      logits[(t - 1) * V + script[step++]!] = 1;
      const fed = Float32Array.from({ length: t }, (_, i) => x[i * 2]!);
      const present = { type: 'float32', dims: [1, 1, past.dims[2]! + t, 1], data: Float32Array.from([...(past.data as Float32Array), ...fed]) };
      return { logits: { type: 'float32', dims: [1, t, V], data: logits }, last_hidden_state: { type: 'float32', dims: [1, t, 2], data: x },
        'present.0.key': present, 'present.0.value': present };
    },
  };
  // Ids 7 then 8 decode to one two-byte character; a lone trailing 7 is an incomplete sequence.
  const tokenizer = {
    stopIds: new Set([STOP]),
    decode: (ids: readonly number[]) => ids.map((id, i) => (id === 7 ? (ids[i + 1] === 8 ? 'é' : '\uFFFD') : id === 8 ? '' : String(id))).join(''),
  };
  return { llm: llm as unknown as GraphSession, embed: embed as unknown as GraphSession, tokenizer: tokenizer as unknown as ChatTokenizer };
}

async function run(script: number[], opts: { maxNewTokens?: number; signal?: AbortSignal; onToken?: (d: string) => void } = {}) {
  const f = fakes(script);
  return generate({
    ...f, config, cache: KvCache.empty(f.llm, config), inputsEmbeds: new Float32Array([1, 0, 2, 0]),
    sampler: argmax, maxNewTokens: opts.maxNewTokens ?? 20, signal: opts.signal, onToken: opts.onToken,
  });
}

describe('generate', () => {
  it('keeps the hidden state of each [SEG] at the step where it is fed as input', async () => {
    const out = await run([3, SEG, 4, SEG, STOP]);
    expect(out.ids).toEqual([3, SEG, 4, SEG, STOP]);
    expect(out.segHidden.map((h) => Array.from(h))).toEqual([[SEG, 0], [SEG, 0]]);
  });

  it('captures a [SEG] followed by the stop token, and none for a [SEG] that is the very last token', async () => {
    expect((await run([SEG, STOP])).segHidden).toHaveLength(1);
    const last = await run([3, SEG], { maxNewTokens: 2 });
    expect(last.ids).toEqual([3, SEG]);
    expect(last.segHidden).toHaveLength(0);
  });

  it('caches the prompt and every generated id but the last', async () => {
    const out = await run([3, 4, STOP]);
    expect(out.cache.seqLength()).toBe(2 + 2);
    expect(Array.from(out.cache.tensors['past_key_values.0.key']!.data as Float32Array)).toEqual([1, 2, 3, 4]);
  });

  it('streams text deltas that never split a multi-byte character and excludes the stop token', async () => {
    const deltas: string[] = [];
    await run([3, 7, 8, 4, STOP], { onToken: (d) => deltas.push(d) });
    expect(deltas).toEqual(['3', 'é', '4']);
  });

  it('stops between steps when the signal is aborted', async () => {
    const controller = new AbortController();
    const onToken = () => controller.abort();
    await expect(run([3, 4, 4, 4, STOP], { signal: controller.signal, onToken })).rejects.toMatchObject({ code: 'OMG_ERR_CANCELLED' });
  });
});
