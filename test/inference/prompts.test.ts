import { describe, expect, it } from 'vitest';
import { geometryFor } from '../../src/inference/preprocess.js';
import { maskCentre, promptFeeds, regionToInput, resolvePrompt } from '../../src/inference/prompts.js';

/** Rows of '#' (mask) and '.' (background) -> [H,W] 0/1. */
function grid(rows: string[]): { data: Uint8Array; width: number; height: number } {
  const width = rows[0]!.length;
  return { width, height: rows.length, data: Uint8Array.from(rows.join('').split(''), (c) => (c === '#' ? 1 : 0)) };
}

describe('mask centre (spec §7.2)', () => {
  it('takes the pixel of largest chessboard distance; the image border counts as background', () => {
    const m = grid(['#####', '#####', '#####', '#####', '#####']);
    expect(maskCentre(m.data, m.width, m.height)).toEqual([2, 2]);
  });

  it('breaks distance ties by the smallest neighbour weight sum, not by row-major order', () => {
    // The d=2 pixels are (2,2), (3,2), (4,2); (3,2) has only 2 orthogonal neighbours at d=1, the others 3.
    const m = grid(['.......', '.#####.', '.#####.', '.#####.', '.......']);
    expect(maskCentre(m.data, m.width, m.height)).toEqual([3, 2]);
  });

  it('takes the first in row-major order when distance and weights tie', () => {
    const m = grid(['####', '####', '####']); // (1,1) and (2,1) are mirror images
    expect(maskCentre(m.data, m.width, m.height)).toEqual([1, 1]);
  });

  it('prefers lighter (diagonal) lower neighbours over orthogonal ones', () => {
    // Every pixel of this cross is at d=1. The centre touches background only diagonally (4 diagonal weights);
    // the top arm touches it orthogonally 3 times and diagonally twice (outside the image), so the centre wins
    // although the top arm comes first in row-major order.
    const m = grid(['.#.', '###', '.#.']);
    expect(maskCentre(m.data, m.width, m.height)).toEqual([1, 1]);
  });

  it('gives (0, 0) for an empty mask', () => {
    expect(maskCentre(new Uint8Array(12), 4, 3)).toEqual([0, 0]);
  });
});

describe('region masks in S_in space', () => {
  it('pads with zeros like the image and resizes with the floor nearest rule', () => {
    // 2x4 portrait: side 4, padLeft 1; S_in 8: source index floor(d * 4 / 8).
    const m = grid(['#.', '.#', '#.', '.#']);
    const r = regionToInput(m, geometryFor(2, 4, 8));
    const rows = Array.from({ length: 8 }, (_, y) => Array.from(r.subarray(y * 8, y * 8 + 8)).join(''));
    expect(rows).toEqual(['00110000', '00110000', '00001100', '00001100', '00110000', '00110000', '00001100', '00001100']);
  });
});

describe('resolvePrompt', () => {
  const g = geometryFor(40, 20, 128);

  it('rejects points outside the image with a typed error', () => {
    expect(() => resolvePrompt({ kind: 'point', x: 41, y: 3 }, g)).toThrow(expect.objectContaining({ code: 'OMG_ERR_PROMPT_OUTSIDE_IMAGE' }));
    expect(() => resolvePrompt({ kind: 'box', x1: 0, y1: 0, x2: 10, y2: -1 }, g)).toThrow(expect.objectContaining({ code: 'OMG_ERR_PROMPT_OUTSIDE_IMAGE' }));
    expect(() => resolvePrompt({ kind: 'point', x: 1.2, y: 0.5, normalized: true }, g)).toThrow(expect.objectContaining({ code: 'OMG_ERR_PROMPT_OUTSIDE_IMAGE' }));
  });

  it('denormalises 0-1 coordinates and orders box corners', () => {
    expect(resolvePrompt({ kind: 'point', x: 0.5, y: 0.25, normalized: true }, g)).toEqual({ kind: 'point', x: 20, y: 5 });
    expect(resolvePrompt({ kind: 'box', x1: 30, y1: 15, x2: 10, y2: 5 }, g)).toEqual({ kind: 'box', x1: 10, y1: 5, x2: 30, y2: 15 });
  });

  it('rejects a mask prompt of another size', () => {
    expect(() => resolvePrompt({ kind: 'mask', mask: { width: 4, height: 4, data: new Uint8Array(16) } }, g))
      .toThrow(expect.objectContaining({ code: 'OMG_ERR_BAD_REQUEST' }));
  });
});

describe('promptFeeds', () => {
  it('maps points and boxes into S_in space and gives masks their centre', () => {
    const g = geometryFor(40, 20, 80); // side 40, padTop 10, scale 2
    const mask = new Uint8Array(40 * 20);
    for (let y = 5; y < 10; y++) for (let x = 20; x < 25; x++) mask[y * 40 + x] = 1;
    const f = promptFeeds([
      { kind: 'point', x: 4, y: 3 },
      { kind: 'box', x1: 1, y1: 2, x2: 11, y2: 12 },
      { kind: 'mask', mask: { width: 40, height: 20, data: mask } },
    ], g);
    expect(Array.from(f.kinds.data as BigInt64Array)).toEqual([0n, 1n, 2n]);
    expect(Array.from((f.points.data as Float32Array).subarray(0, 2))).toEqual([8, 26]);
    expect(Array.from((f.boxes.data as Float32Array).subarray(4, 8))).toEqual([2, 24, 22, 44]);
    // The 5x5 square becomes the 10x10 block x 40..49, y 30..39 in S_in space; its centre by the §7.2 rule:
    expect(Array.from((f.points.data as Float32Array).subarray(4, 6))).toEqual([44, 34]);
    expect(f.regions.dims).toEqual([3, 80, 80]);
    expect((f.regions.data as Float32Array)[2 * 6400 + 30 * 80 + 40]).toBe(1);
  });

  it('refuses a mask that no input pixel samples, whose centre and attention would be noise', () => {
    const g = geometryFor(40, 20, 8); // side 40, sampled at x, y = 0, 5, 10, ...
    const mask = new Uint8Array(40 * 20);
    mask[12 * 40 + 13] = 1;
    const thin = { kind: 'mask' as const, mask: { width: 40, height: 20, data: mask } };
    expect(() => promptFeeds([thin], g)).toThrow(expect.objectContaining({
      code: 'OMG_ERR_BAD_REQUEST', userMessage: "The mask covers no pixel of the model's 8x8 input: mark a larger region.",
    }));
    mask[15 * 40 + 15] = 1;
    expect(Array.from(promptFeeds([thin], g).regions.data as Float32Array).filter((v) => v === 1)).toHaveLength(1);
  });
});
