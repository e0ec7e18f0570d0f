// The image pass (omg-llava.md §4–§5): vision.onnx gives the segmenter features, queries and logits; prior.onnx
// turns them into LLM-space tokens. The image block spliced in place of <image> is pixel tokens ; separator ;
// the valid object tokens in ascending query order.
import { omgError } from '../errors.js';
import type { ModelConfig } from './bundle.js';
import { f32, float32, type GraphSession, type Tensor } from './session.js';

/** Outputs of vision.onnx, kept (and cached) for prompts, [SEG] decoding and panoptic segmentation. */
export interface ImageFeatures {
  maskFeatures: Tensor; // [1,C,M,M]
  mem0: Tensor; mem1: Tensor; mem2: Tensor; // [1,C,L0,L0], [1,C,L1,L1], [1,C,L2,L2]
  classLogits: Float32Array; // [1,Q,K]
  maskLogits: Float32Array; // [1,Q,M,M]
}

export interface ImagePass { features: ImageFeatures; block: Float32Array; blockLength: number; objectCount: number } // block [P+1+n, D]

/** Bytes held by an image pass (for the byte-bounded LRU). */
export function imagePassBytes(p: ImagePass): number {
  const f = p.features;
  return [f.maskFeatures, f.mem0, f.mem1, f.mem2].reduce((n, t) => n + t.data.byteLength, 0)
    + f.classLogits.byteLength + f.maskLogits.byteLength + p.block.byteLength;
}

/** Feeds that prompt.onnx and seg.onnx share: the cached decoder features. */
export function featureFeeds(f: ImageFeatures): Record<string, Tensor> {
  return { mask_features: f.maskFeatures, mem0: f.mem0, mem1: f.mem1, mem2: f.mem2 };
}

/**
 * Keeps the valid object tokens in ascending query order and stacks the block.
 * pixelTokens [P,D], separator [1,D], objectTokens [Q,D], valid [Q] -> block [P+1+n, D].
 */
export function buildImageBlock(pixelTokens: Float32Array, separator: Float32Array, objectTokens: Float32Array,
  valid: Uint8Array, hidden: number): { block: Float32Array; length: number; objects: number } {
  const kept: number[] = [];
  valid.forEach((v, q) => { if (v) kept.push(q); });
  const pixels = pixelTokens.length / hidden;
  const length = pixels + 1 + kept.length;
  const block = new Float32Array(length * hidden);
  block.set(pixelTokens, 0);
  block.set(separator, pixels * hidden);
  kept.forEach((q, i) => block.set(objectTokens.subarray(q * hidden, (q + 1) * hidden), (pixels + 1 + i) * hidden));
  return { block, length, objects: kept.length };
}

/** Runs vision.onnx then prior.onnx on pixel_values [1,3,S_in,S_in]. */
export async function runImagePass(vision: GraphSession, prior: GraphSession, pixelValues: Float32Array,
  config: ModelConfig, time: (stage: string, ms: number) => void): Promise<ImagePass> {
  const s = config.image_size;
  let t0 = performance.now();
  const v = await vision.run({ pixel_values: float32(pixelValues, [1, 3, s, s]) });
  time('vision', performance.now() - t0);
  t0 = performance.now();
  const need = (name: string): Tensor => v[name] as Tensor;
  const p = await prior.run({
    clip_feature: need('clip_feature'), query_feat: need('query_feat'), query_pos: need('query_pos'),
    class_logits: need('class_logits'), mask_logits: need('mask_logits'),
  });
  time('prior', performance.now() - t0);
  const valid = p.object_valid;
  if (valid?.type !== 'bool') throw omgError('OMG_ERR_BUNDLE_INVALID', { reason: 'prior.onnx object_valid is not a bool tensor' });
  const { block, length, objects } = buildImageBlock(f32(p.pixel_tokens, 'pixel_tokens'), f32(p.separator, 'separator'),
    f32(p.object_tokens, 'object_tokens'), valid.data, config.llm.hidden_size);
  return {
    features: {
      maskFeatures: need('mask_features'), mem0: need('mem0'), mem1: need('mem1'), mem2: need('mem2'),
      classLogits: f32(v.class_logits, 'class_logits'), maskLogits: f32(v.mask_logits, 'mask_logits'),
    },
    block, blockLength: length, objectCount: objects,
  };
}
