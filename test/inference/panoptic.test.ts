import { describe, expect, it } from 'vitest';
import type { ModelConfig } from '../../src/inference/bundle.js';
import { segmentEverything } from '../../src/inference/panoptic.js';
import { geometryFor } from '../../src/inference/preprocess.js';
import type { ImageFeatures } from '../../src/inference/vision.js';

// A 4x4 image with S_in 16, so M = 4 and the logits map 1:1 onto pixels. Masks drawn as rows of '#'.
const config = { num_classes: 2, class_names: ['circle', 'square'], mask_size: 4 } as unknown as ModelConfig;
const logits = (rows: string[]) => rows.join('').split('').map((c) => (c === '#' ? 10 : -10));

describe('segmentEverything', () => {
  it('keeps confident queries, gives shared pixels to the better score, numbers them by area', () => {
    const masks = [
      logits(['##..', '##..', '##..', '....']), // q0 circle, area 6, best score
      logits(['.###', '..##', '..##', '.###']), // q1 square, area 10; col 1 row 0 already taken by q0 -> 9 left (90%)
      logits(['####', '####', '####', '####']), // q2 confident but almost everything is taken -> dropped
      logits(['####', '....', '....', '....']), // q3 background wins -> not a candidate
    ];
    const features = {
      classLogits: new Float32Array([5, 0, 0, 0, 5, 0, 3, 0, 0, 0, 0, 5]), // [1,Q=4,K=3], background last
      maskLogits: new Float32Array(masks.flat()),
    } as unknown as ImageFeatures;
    const regions = segmentEverything(features, config, geometryFor(4, 4, 16));
    expect(regions.map((r) => [r.id, r.label, r.classId, r.mask.area])).toEqual([[1, 'square', 1, 9], [2, 'circle', 0, 6]]);
    expect(regions[0]!.score).toBeCloseTo(1 - 1 / (Math.exp(5) + 2), 6); // foreground probability
    const overlap = regions[0]!.mask.data.some((v, i) => v && regions[1]!.mask.data[i]);
    expect(overlap).toBe(false);
  });

  it('gives a pixel to the query most sure of it, so two sure objects beat a better-scoring vague query over both', () => {
    const vague = logits(['##.#', '##.#', '....', '....']).map((v) => (v > 0 ? 0.5 : -10)); // sigmoid 0.62 on both objects
    const masks = [vague, logits(['##..', '##..', '....', '....']), logits(['...#', '...#', '....', '....'])];
    const features = {
      classLogits: new Float32Array([8, 0, 0, 3, 0, 0, 0, 3, 0]), // q0 the surest query, q1 and q2 less sure
      maskLogits: new Float32Array(masks.flat()),
    } as unknown as ImageFeatures;
    const regions = segmentEverything(features, config, geometryFor(4, 4, 16));
    expect(regions.map((r) => [r.classId, r.mask.area])).toEqual([[0, 4], [1, 2]]);
    expect(regions[0]!.mask.data.slice(0, 4)).toEqual(Uint8Array.from([1, 1, 0, 0]));
  });
});
