// The render target on its own: a 1024x768 photo with 5 overlapping masks through renderOverlay (decode, blend,
// contours, labels, PNG encode), in wall time and in CPU time (CPU time is what the shared machine's load hides least).
import { renderOverlay } from '../src/render/overlay.js';
import { ellipses, photo } from './images.js';
import { summarize, type Summary } from './stats.js';

export interface RenderResult { width: number; height: number; masks: number; wall: Summary; cpu: Summary; pngBytes: number }

export async function benchRender(width: number, height: number, count: number, reps: number, warmup: number): Promise<RenderResult> {
  const image = await photo(width, height, 'jpeg');
  const layers = ellipses(width, height, count).map((mask, i) => ({ n: i + 1, mask, phrase: `object ${i + 1}` }));
  const wall: number[] = [], cpu: number[] = [];
  let pngBytes = 0;
  for (let i = 0; i < warmup + reps; i++) {
    const c0 = process.cpuUsage(), t0 = performance.now();
    const out = await renderOverlay(image, layers);
    const t = performance.now() - t0, c = process.cpuUsage(c0);
    if (i < warmup) continue;
    wall.push(t);
    cpu.push((c.user + c.system) / 1000);
    pngBytes = out.bytes.byteLength;
  }
  return { width, height, masks: count, wall: summarize(wall), cpu: summarize(cpu), pngBytes };
}
