import { describe, expect, it } from 'vitest';
import { area, decode, encode } from '../../src/render/rle.js';

const mask = (width: number, height: number, bits: number[]) => ({ width, height, data: Uint8Array.from(bits) });

describe('rle', () => {
  it('encodes row-major runs that start with zeros', () => {
    // 3x2: row 0 = 1 1 0, row 1 = 0 1 1
    expect(encode(mask(3, 2, [1, 1, 0, 0, 1, 1]))).toEqual({ size: [2, 3], counts: [0, 2, 2, 2] });
    expect(encode(mask(2, 2, [0, 0, 0, 0]))).toEqual({ size: [2, 2], counts: [4] });
    expect(encode(mask(2, 1, [0, 1]))).toEqual({ size: [1, 2], counts: [1, 1] });
  });

  it('round-trips random masks', () => {
    let seed = 7;
    const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (let t = 0; t < 20; t++) {
      const w = 1 + Math.floor(rand() * 17);
      const h = 1 + Math.floor(rand() * 13);
      const m = mask(w, h, Array.from({ length: w * h }, () => (rand() < 0.4 ? 1 : 0)));
      const rle = encode(m);
      expect(decode(rle)).toEqual(m);
      expect(area(rle)).toBe(m.data.reduce((a, b) => a + b, 0));
    }
  });

  it('refuses runs that do not cover the mask exactly', () => {
    expect(() => decode({ size: [2, 2], counts: [1, 2] })).toThrow(/covers 3/);
    expect(() => decode({ size: [2, 2], counts: [3, 2] })).toThrow(/does not fit/);
    expect(() => decode({ size: [1, 2], counts: [-1, 3] })).toThrow(/does not fit/);
  });
});
