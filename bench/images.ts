// Synthetic inputs: a photo-like image (smooth colour fields plus sensor-like noise, so PNG/JPEG sizes and codec
// work resemble a real photo rather than a flat test card) and overlapping elliptical masks.
import sharp from 'sharp';
import { prng } from '../src/inference/sampler.js';
import type { BinaryMask } from '../src/render/rle.js';

function photoPixels(width: number, height: number, seed: number): Buffer {
  const rand = prng(seed);
  const rgb = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const o = (y * width + x) * 3, u = x / width, v = y / height;
      const noise = (rand() - 0.5) * 24;
      rgb[o] = clamp(200 * u + 40 * Math.sin(9 * v) + noise);
      rgb[o + 1] = clamp(160 * v + 50 * Math.cos(7 * u) + noise);
      rgb[o + 2] = clamp(120 + 90 * Math.sin(5 * (u + v)) + noise);
    }
  }
  return rgb;
}

async function encodePhoto(rgb: Buffer, width: number, height: number, format: 'png' | 'jpeg'): Promise<Uint8Array> {
  const img = sharp(rgb, { raw: { width, height, channels: 3 } });
  return new Uint8Array(format === 'png' ? await img.png().toBuffer() : await img.jpeg({ quality: 90 }).toBuffer());
}

export async function photo(width: number, height: number, format: 'png' | 'jpeg' = 'jpeg', seed = 1): Promise<Uint8Array> {
  return encodePhoto(photoPixels(width, height, seed), width, height, format);
}

/** New JPEG photos on demand, each with different pixels (the counter, in base 4, sets the grey level of eight 8x8
 * blocks along the top edge: steps of 64 survive JPEG quantisation, where a one-pixel change may not), so each is
 * a new upload to the caches while costing one encode rather than a new synthesis. */
export function photoStream(width: number, height: number, seed = 100): () => Promise<Uint8Array> {
  const rgb = photoPixels(width, height, seed);
  let n = 0;
  return () => {
    n++;
    for (let block = 0; block < 8; block++) {
      const level = ((n >> (2 * block)) & 3) * 64;
      for (let y = 0; y < 8; y++) rgb.fill(level, (y * width + block * 8) * 3, (y * width + block * 8 + 8) * 3);
    }
    return encodePhoto(rgb, width, height, 'jpeg');
  };
}

const clamp = (v: number) => Math.max(0, Math.min(255, Math.round(v)));

/** `count` overlapping ellipses spread over the image, each covering a few percent of it. */
export function ellipses(width: number, height: number, count: number): BinaryMask[] {
  return Array.from({ length: count }, (_, i) => {
    const cx = width * (0.2 + 0.6 * ((i * 0.37) % 1)), cy = height * (0.25 + 0.5 * ((i * 0.61) % 1));
    const rx = width * 0.15, ry = height * 0.12;
    const data = new Uint8Array(width * height);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) if (((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1) data[y * width + x] = 1;
    }
    return { width, height, data };
  });
}
