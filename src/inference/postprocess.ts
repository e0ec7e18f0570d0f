// Mask logits -> masks at the original image size (omg-llava.md §3, §9.3): bilinear (align_corners=False) upsampling
// of the logits to the padded square S x S, the exact crop of the padding, then threshold at logit 0.
import type { Geometry } from './preprocess.js';
import type { BinaryMask } from './prompts.js';

/** bbox is x1,y1,x2,y2 (inclusive-exclusive); score is the mean sigmoid probability inside the mask (0 if empty). */
export interface Mask extends BinaryMask { bbox: [number, number, number, number]; area: number; score: number }

/** PyTorch's source index and weights for one axis of bilinear, align_corners=False (negative sources clamp to 0). */
function axis(inSize: number, outSize: number, from: number, count: number) {
  const i0 = new Int32Array(count), i1 = new Int32Array(count), w1 = new Float64Array(count);
  const scale = inSize / outSize;
  for (let k = 0; k < count; k++) {
    const src = Math.max(scale * (from + k + 0.5) - 0.5, 0);
    const lo = Math.floor(src);
    i0[k] = lo;
    i1[k] = lo < inSize - 1 ? lo + 1 : lo;
    w1[k] = src - lo;
  }
  return { i0, i1, w1 };
}

/**
 * One mask's logits [M,M] over the padded square, upsampled to S x S and cropped to the original image:
 * returns logits [H,W] for the original pixels only (the rest of the square is never computed).
 */
export function upsampleCrop(logits: Float32Array, m: number, g: Geometry): Float32Array {
  const xs = axis(m, g.side, g.padLeft, g.width), ys = axis(m, g.side, g.padTop, g.height);
  const out = new Float32Array(g.width * g.height);
  for (let y = 0; y < g.height; y++) {
    const r0 = ys.i0[y]! * m, r1 = ys.i1[y]! * m, wy = ys.w1[y]!;
    for (let x = 0; x < g.width; x++) {
      const c0 = xs.i0[x]!, c1 = xs.i1[x]!, wx = xs.w1[x]!;
      const top = (1 - wx) * logits[r0 + c0]! + wx * logits[r0 + c1]!;
      const bottom = (1 - wx) * logits[r1 + c0]! + wx * logits[r1 + c1]!;
      out[y * g.width + x] = (1 - wy) * top + wy * bottom;
    }
  }
  return out;
}

/** A binary mask (logit > 0, i.e. sigmoid > 0.5) with its bbox, area and mean probability inside. */
export function toMask(cropped: Float32Array, width: number, height: number): Mask {
  const data = new Uint8Array(width * height);
  let area = 0, prob = 0, x1 = width, y1 = height, x2 = 0, y2 = 0;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const v = cropped[y * width + x]!;
      if (v <= 0) continue;
      data[y * width + x] = 1;
      area++;
      prob += 1 / (1 + Math.exp(-v));
      if (x < x1) x1 = x;
      if (y < y1) y1 = y;
      if (x >= x2) x2 = x + 1;
      if (y >= y2) y2 = y + 1;
    }
  }
  const bbox: Mask['bbox'] = area ? [x1, y1, x2, y2] : [0, 0, 0, 0];
  return { width, height, data, bbox, area, score: area ? prob / area : 0 };
}

/** mask_logits [N,1,M,M] -> N masks at the original size. */
export function masksFromLogits(logits: Float32Array, m: number, g: Geometry): Mask[] {
  const n = logits.length / (m * m);
  return Array.from({ length: n }, (_, i) => toMask(upsampleCrop(logits.subarray(i * m * m, (i + 1) * m * m), m, g), g.width, g.height));
}
