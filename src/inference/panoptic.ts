// "Segment everything" from the image pass alone (vision.onnx class and mask logits, Mask2Former-style panoptic
// inference): score each query, keep the confident ones, paint them without overlap, number them by area.
// A query's score is its foreground probability (1 - background): "everything" asks which regions are objects,
// and with many fine classes (or open-vocabulary ones) the best single class is often far less sure than that.
import type { ModelConfig } from './bundle.js';
import { toMask, upsampleCrop, type Mask } from './postprocess.js';
import type { Geometry } from './preprocess.js';
import type { ImageFeatures } from './vision.js';

export interface Region { id: number; label: string; classId: number; score: number; mask: Mask } // id 1..n

export interface PanopticOptions {
  minScore: number; // keep queries whose foreground probability exceeds this
  minKeptFraction: number; // drop a query when less than this fraction of its mask is left after higher scores
}

export const PANOPTIC_DEFAULTS: PanopticOptions = { minScore: 0.5, minKeptFraction: 0.8 };

/** Per query: softmax over all K columns (background last), then the best real class and the foreground probability. */
export function classify(classLogits: Float32Array, k: number): { classId: number; score: number }[] {
  const q = classLogits.length / k;
  return Array.from({ length: q }, (_, i) => {
    const row = classLogits.subarray(i * k, (i + 1) * k); // [K]
    const top = Math.max(...row);
    const exp = Array.from(row, (v) => Math.exp(v - top));
    const total = exp.reduce((s, v) => s + v, 0);
    let classId = 0;
    for (let c = 1; c < k - 1; c++) if (exp[c]! > exp[classId]!) classId = c;
    return { classId, score: 1 - exp[k - 1]! / total };
  });
}

/**
 * classLogits [1,Q,K], maskLogits [1,Q,M,M] -> non-overlapping regions ordered by area (largest first), numbered 1..n.
 * Higher-scoring queries claim pixels first; a query keeps only the pixels still free.
 */
export function segmentEverything(features: ImageFeatures, config: ModelConfig, g: Geometry,
  opts: PanopticOptions = PANOPTIC_DEFAULTS): Region[] {
  const k = config.num_classes + 1, m = config.mask_size;
  const candidates = classify(features.classLogits, k)
    .map((c, query) => ({ ...c, query }))
    .filter((c) => c.score > opts.minScore)
    .sort((a, b) => b.score - a.score);
  const taken = new Uint8Array(g.width * g.height);
  const kept: Omit<Region, 'id'>[] = [];
  for (const c of candidates) {
    const logits = upsampleCrop(features.maskLogits.subarray(c.query * m * m, (c.query + 1) * m * m), m, g);
    const full = toMask(logits, g.width, g.height);
    if (full.area === 0) continue;
    // Pixels already claimed by a better query are removed from this one (their logit set below threshold).
    for (let i = 0; i < taken.length; i++) if (taken[i]) logits[i] = -1;
    const free = toMask(logits, g.width, g.height);
    if (free.area === 0 || free.area < opts.minKeptFraction * full.area) continue;
    free.data.forEach((v, i) => { if (v) taken[i] = 1; });
    kept.push({ label: config.class_names[c.classId] ?? `class ${c.classId}`, classId: c.classId, score: c.score, mask: free });
  }
  return kept.sort((a, b) => b.mask.area - a.mask.area).map((r, i) => ({ id: i + 1, ...r }));
}
