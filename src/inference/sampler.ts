// Choosing the next token from the last logits [V]: greedy by default; sampling applies temperature, then top-k,
// then top-p (as Hugging Face's processors do), with a seeded PRNG so a seed reproduces an answer.

export interface GenerationOptions { maxNewTokens: number; doSample: boolean; temperature: number; topK: number; topP: number; seed: number }

/** mulberry32: a small, fast, seedable PRNG returning floats in [0, 1). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Index of the largest logit (the first one on ties, like torch.argmax). */
export function argmax(logits: Float32Array): number {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i]! > logits[best]!) best = i;
  return best;
}

export type Sampler = (logits: Float32Array) => number;

export function createSampler(opts: GenerationOptions): Sampler {
  if (!opts.doSample) return argmax;
  const random = prng(opts.seed);
  return (logits) => {
    // Candidates sorted by logit, cut to top-k, softmax at the temperature.
    let order = Array.from(logits.keys()).sort((a, b) => logits[b]! - logits[a]!);
    if (opts.topK > 0) order = order.slice(0, opts.topK);
    const top = logits[order[0]!]!;
    const weights = order.map((i) => Math.exp((logits[i]! - top) / opts.temperature));
    const total = weights.reduce((s, w) => s + w, 0);
    // Top-p keeps the smallest prefix whose probability reaches top_p (at least one token).
    let kept = 0, mass = 0;
    while (kept < order.length && (kept === 0 || mass < opts.topP)) mass += weights[kept++]! / total;
    const r = random() * weights.slice(0, kept).reduce((s, w) => s + w, 0);
    let acc = 0;
    for (let i = 0; i < kept; i++) {
      acc += weights[i]!;
      if (r < acc) return order[i]!;
    }
    return order[kept - 1]!;
  };
}
