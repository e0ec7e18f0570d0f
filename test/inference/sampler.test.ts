import { describe, expect, it } from 'vitest';
import { argmax, createSampler } from '../../src/inference/sampler.js';

const logits = new Float32Array([0.1, 2.0, 1.9, -1, 2.0]);
const opts = { maxNewTokens: 1, doSample: true, temperature: 1, topK: 0, topP: 1, seed: 7 };

describe('sampler', () => {
  it('is greedy by default, taking the first maximum', () => {
    expect(argmax(logits)).toBe(1);
    expect(createSampler({ ...opts, doSample: false })(logits)).toBe(1);
  });

  it('reproduces the same tokens for the same seed', () => {
    const a = createSampler(opts), b = createSampler(opts);
    const draws = Array.from({ length: 20 }, () => [a(logits), b(logits)]);
    expect(draws.every(([x, y]) => x === y)).toBe(true);
    expect(new Set(draws.map(([x]) => x)).size).toBeGreaterThan(1);
  });

  it('samples only within top-k and top-p', () => {
    const topK = createSampler({ ...opts, topK: 2 });
    const topP = createSampler({ ...opts, topP: 0.01 });
    for (let i = 0; i < 50; i++) {
      expect([1, 4]).toContain(topK(logits));
      expect(topP(logits)).toBe(1); // the smallest prefix reaching 1% is the single most likely token
    }
  });
});
