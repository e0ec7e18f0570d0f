import { describe, expect, it } from 'vitest';
import { masksFromLogits, toMask, upsampleCrop } from '../../src/inference/postprocess.js';
import { geometryFor } from '../../src/inference/preprocess.js';

describe('mask post-processing', () => {
  it('upsamples bilinearly (align_corners=False) over the padded square, then crops exactly', () => {
    // M=2 logits over a 4x4 padded square holding a 4x2 landscape image at rows 1..2 (padTop 1).
    const g = geometryFor(4, 2, 8);
    const logits = new Float32Array([0, 4, 8, 12]); // [[0,4],[8,12]]
    const out = upsampleCrop(logits, 2, g);
    // PyTorch: src = (dst + 0.5) * 0.5 - 0.5 clamped at 0 -> sources 0, .25, .75, 1.25 (clamped to index 1) per axis.
    // Padded rows 1 and 2 (sources .25 and .75) of the 4x4 upsampled map:
    expect(Array.from(out)).toEqual([2, 3, 5, 6, 6, 7, 9, 10]);
  });

  it('crops the left padding of a portrait image', () => {
    const g = geometryFor(1, 3, 4); // side 3, padLeft 1
    const m = 3;
    const logits = new Float32Array(9).map((_, i) => (i % 3 === 1 ? 5 : -5)); // only the middle column is positive
    const mask = masksFromLogits(logits, m, g)[0]!; // M = S here, so the upsampling is the identity
    expect(Array.from(mask.data)).toEqual([1, 1, 1]);
  });

  it('thresholds at logit 0 and reports bbox (exclusive end), area and mean probability', () => {
    const cropped = new Float32Array([-1, 0, 2, -3, 2, 0]); // 3x2
    const m = toMask(cropped, 3, 2);
    expect(Array.from(m.data)).toEqual([0, 0, 1, 0, 1, 0]);
    expect(m.bbox).toEqual([1, 0, 3, 2]);
    expect(m.area).toBe(2);
    expect(m.score).toBeCloseTo(1 / (1 + Math.exp(-2)), 10);
  });

  it('gives an empty mask a zero bbox and score', () => {
    const m = toMask(new Float32Array(4).fill(-1), 2, 2);
    expect([m.area, m.score, m.bbox]).toEqual([0, 0, [0, 0, 0, 0]]);
  });
});
