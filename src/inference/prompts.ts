// Visual prompts (omg-llava.md §7): points, boxes and masks in original pixels (or normalised 0-1) mapped into
// S_in space, the mask-centre rule of §7.2, and prompt.onnx giving one LLM embedding per prompt.
import { omgError } from '../errors.js';
import type { Geometry } from './preprocess.js';
import { toInputSpace } from './preprocess.js';
import { f32, float32, int64, type GraphSession } from './session.js';
import { featureFeeds, type ImageFeatures } from './vision.js';

export interface BinaryMask { width: number; height: number; data: Uint8Array } // 0/1, row-major, original image size

export type VisualPrompt =
  | { kind: 'point'; x: number; y: number; normalized?: boolean }
  | { kind: 'box'; x1: number; y1: number; x2: number; y2: number; normalized?: boolean }
  | { kind: 'mask'; mask: BinaryMask };

const KIND = { point: 0, box: 1, mask: 2 } as const;

function checkInside(g: Geometry, xs: number[], ys: number[]): void {
  const ok = xs.every((x) => Number.isFinite(x) && x >= 0 && x <= g.width) && ys.every((y) => Number.isFinite(y) && y >= 0 && y <= g.height);
  if (!ok) throw omgError('OMG_ERR_PROMPT_OUTSIDE_IMAGE', { width: g.width, height: g.height });
}

/** Denormalises and checks a prompt against the original image; returns original-pixel coordinates. */
export function resolvePrompt(p: VisualPrompt, g: Geometry): VisualPrompt {
  if (p.kind === 'mask') {
    if (p.mask.width !== g.width || p.mask.height !== g.height || p.mask.data.length !== g.width * g.height) {
      throw omgError('OMG_ERR_BAD_REQUEST', { correction: `A mask prompt must be ${g.width}x${g.height}, the size of the image.` });
    }
    return p;
  }
  const sx = p.normalized ? g.width : 1, sy = p.normalized ? g.height : 1;
  if (p.kind === 'point') {
    const point = { kind: 'point' as const, x: p.x * sx, y: p.y * sy };
    checkInside(g, [point.x], [point.y]);
    return point;
  }
  // Corners may come in either order (a drag from bottom-right); the model wants x1 <= x2, y1 <= y2.
  const xs = [p.x1 * sx, p.x2 * sx], ys = [p.y1 * sy, p.y2 * sy];
  checkInside(g, xs, ys);
  return { kind: 'box', x1: Math.min(...xs), y1: Math.min(...ys), x2: Math.max(...xs), y2: Math.max(...ys) };
}

/**
 * A region mask in S_in space: zero-padded to the square like the image (`expand2square_mask`), then nearest
 * resized with PyTorch's legacy rule src = floor(dst * S / S_in). Returns [S_in,S_in] 0/1.
 */
export function regionToInput(mask: BinaryMask, g: Geometry): Uint8Array {
  const n = g.inputSize;
  const out = new Uint8Array(n * n);
  const src = Array.from({ length: n }, (_, d) => Math.floor((d * g.side) / n));
  for (let y = 0; y < n; y++) {
    const my = src[y]! - g.padTop;
    if (my < 0 || my >= g.height) continue;
    for (let x = 0; x < n; x++) {
      const mx = src[x]! - g.padLeft;
      if (mx >= 0 && mx < g.width) out[y * n + x] = mask.data[my * g.width + mx] ? 1 : 0;
    }
  }
  return out;
}

// kornia's distance transform weights its 3x3 kernel by exp(-d / h), h = 0.35 (§7.2).
const W_ORTHO = Math.exp(-1 / 0.35);
const W_DIAG = Math.exp(-Math.SQRT2 / 0.35);

/**
 * The most interior pixel of a mask, exactly as upstream's kornia ring peel picks it (§7.2): largest chessboard
 * distance to the background (outside the mask counts as background); among those, the smallest sum of kernel weights
 * over neighbours of strictly smaller distance; then the first in row-major order. An empty mask gives (0, 0).
 */
export function maskCentre(mask: Uint8Array, width: number, height: number): [number, number] {
  const d = new Int32Array(width * height);
  const at = (x: number, y: number) => (x < 0 || y < 0 || x >= width || y >= height ? 0 : d[y * width + x]!);
  for (let i = 0; i < d.length; i++) d[i] = mask[i] ? 1 << 30 : 0;
  // Two chamfer passes with unit weights give the exact chessboard distance.
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = y * width + x;
      if (d[i]) d[i] = Math.min(d[i]!, at(x - 1, y) + 1, at(x - 1, y - 1) + 1, at(x, y - 1) + 1, at(x + 1, y - 1) + 1);
    }
  }
  for (let y = height - 1; y >= 0; y--) {
    for (let x = width - 1; x >= 0; x--) {
      const i = y * width + x;
      if (d[i]) d[i] = Math.min(d[i]!, at(x + 1, y) + 1, at(x + 1, y + 1) + 1, at(x, y + 1) + 1, at(x - 1, y + 1) + 1);
    }
  }
  let best = -1, bestSum = Infinity, bestDist = 0;
  for (let i = 0; i < d.length; i++) {
    const di = d[i]!;
    if (di === 0 || di < bestDist) continue;
    const x = i % width, y = (i - x) / width;
    let ortho = 0, diag = 0;
    for (let dy = -1; dy <= 1; dy++) {
      for (let dx = -1; dx <= 1; dx++) {
        if ((dx || dy) && at(x + dx, y + dy) < di) { if (dx && dy) diag++; else ortho++; }
      }
    }
    const sum = ortho * W_ORTHO + diag * W_DIAG;
    if (di > bestDist || sum < bestSum) { best = i; bestSum = sum; bestDist = di; }
  }
  return best < 0 ? [0, 0] : [best % width, Math.floor(best / width)];
}

/** prompt.onnx feeds: points [N,2], boxes [N,4] (S_in space), regions [N,S_in,S_in], kinds [N]. */
export function promptFeeds(prompts: VisualPrompt[], g: Geometry) {
  const n = prompts.length, s = g.inputSize;
  const points = new Float32Array(n * 2), boxes = new Float32Array(n * 4), regions = new Float32Array(n * s * s);
  prompts.forEach((raw, i) => {
    const p = resolvePrompt(raw, g);
    if (p.kind === 'point') {
      points.set(toInputSpace(g, p.x, p.y), i * 2);
    } else if (p.kind === 'box') {
      const [x1, y1] = toInputSpace(g, p.x1, p.y1), [x2, y2] = toInputSpace(g, p.x2, p.y2);
      boxes.set([x1, y1, x2, y2], i * 4);
    } else {
      const region = regionToInput(p.mask, g);
      // A mask that misses every sampled pixel (empty, or thinner than a pixel of S_in) would prompt with noise.
      if (!region.includes(1)) {
        throw omgError('OMG_ERR_BAD_REQUEST', { correction: `The mask covers no pixel of the model's ${s}x${s} input: mark a larger region.` });
      }
      regions.set(region, i * s * s);
      points.set(maskCentre(region, s, s), i * 2);
    }
  });
  return {
    points: float32(points, [n, 2]), boxes: float32(boxes, [n, 4]), regions: float32(regions, [n, s, s]),
    kinds: int64(prompts.map((p) => KIND[p.kind]), [n]),
  };
}

/** Runs prompt.onnx once for all prompts of a turn. Returns prompt_embeds [N,D]. */
export async function encodePrompts(session: GraphSession, features: ImageFeatures, prompts: VisualPrompt[], g: Geometry): Promise<Float32Array> {
  if (prompts.length === 0) return new Float32Array(0);
  const out = await session.run({ ...featureFeeds(features), ...promptFeeds(prompts, g) });
  return f32(out.prompt_embeds, 'prompt_embeds');
}
