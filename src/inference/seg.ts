// [SEG] decoding (omg-llava.md §9.3): seg.onnx maps each captured hidden state to a query and runs the [SEG]
// decoder on the cached image features; each [SEG] is its own batch element.
import type { ModelConfig } from './bundle.js';
import { f32, float32, type GraphSession } from './session.js';
import { featureFeeds, type ImageFeatures } from './vision.js';

/** seg_hidden: N states of [D] -> mask_logits [N,1,M,M] (empty when N = 0). */
export async function decodeSeg(seg: GraphSession, features: ImageFeatures, segHidden: Float32Array[], config: ModelConfig): Promise<Float32Array> {
  if (segHidden.length === 0) return new Float32Array(0);
  const d = config.llm.hidden_size;
  const hidden = new Float32Array(segHidden.length * d); // [N,D]
  segHidden.forEach((h, i) => hidden.set(h, i * d));
  const out = await seg.run({ seg_hidden: float32(hidden, [segHidden.length, d]), ...featureFeeds(features) });
  return f32(out.mask_logits, 'mask_logits');
}
