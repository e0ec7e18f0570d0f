// The render target on its own: a 1024x768 photo with 5 overlapping masks through renderOverlay (decode, blend,
// contours, labels, PNG encode), in wall time and in CPU time (CPU time is what the shared machine's load hides least).
import sharp from 'sharp';
import { renderOverlay } from '../src/render/overlay.js';
import { ellipses, photo } from './images.js';
import { summarize, type Summary } from './stats.js';

export interface RenderResult {
  width: number; height: number; masks: number; wall: Summary; cpu: Summary; pngBytes: number;
  decodeCpu: Summary; pngEncodeCpu: Summary; // the two codec steps alone, on the same pixels, for the share they take
}

async function cpuMs(fn: () => Promise<unknown>): Promise<number> {
  const c0 = process.cpuUsage();
  await fn();
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / 1000;
}

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
  const raw = await sharp(image).raw().toBuffer();
  const decodeCpu: number[] = [], pngEncodeCpu: number[] = [];
  for (let i = 0; i < reps; i++) {
    decodeCpu.push(await cpuMs(() => sharp(image).raw().toBuffer()));
    pngEncodeCpu.push(await cpuMs(() => sharp(raw, { raw: { width, height, channels: 3 } }).png({ compressionLevel: 2 }).toBuffer()));
  }
  return { width, height, masks: count, wall: summarize(wall), cpu: summarize(cpu), pngBytes, decodeCpu: summarize(decodeCpu), pngEncodeCpu: summarize(pngEncodeCpu) };
}
