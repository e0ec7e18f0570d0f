// Per-mask exports: transparent PNG cut-outs of the image, binary mask PNGs at the original size (the CLI's
// --masks-dir), and one JSON document with every mask as RLE.
import sharp from 'sharp';
import { encode, type BinaryMask, type Rle } from './rle.js';

export type Bbox = [x1: number, y1: number, x2: number, y2: number]; // x2/y2 exclusive

/** The tight box around the mask's pixels, or null when it is empty. */
export function bboxOf(mask: BinaryMask): Bbox | null {
  const { width, height, data } = mask;
  let x1 = width, y1 = height, x2 = 0, y2 = 0;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (!data[y * width + x]) continue;
      x1 = Math.min(x1, x);
      y1 = Math.min(y1, y);
      x2 = Math.max(x2, x + 1);
      y2 = Math.max(y2, y + 1);
    }
  }
  return x2 > x1 ? [x1, y1, x2, y2] : null;
}

/** A greyscale PNG at the mask's size: 255 inside, 0 outside. */
export async function maskPng(mask: BinaryMask): Promise<Uint8Array> {
  const grey = Buffer.from(mask.data.map((v) => (v ? 255 : 0)));
  return new Uint8Array(await sharp(grey, { raw: { width: mask.width, height: mask.height, channels: 1 } }).toColourspace('b-w').png().toBuffer());
}

/** The image cropped to the mask's box, transparent outside the mask; null for an empty mask. */
export async function cutoutPng(image: Uint8Array, mask: BinaryMask): Promise<Uint8Array | null> {
  const box = bboxOf(mask);
  if (!box) return null;
  const [x1, y1, x2, y2] = box;
  const w = x2 - x1, h = y2 - y1;
  const { data, info } = await sharp(image).autoOrient().toColourspace('srgb').removeAlpha().raw().toBuffer({ resolveWithObject: true });
  if (info.width !== mask.width || info.height !== mask.height) {
    throw new RangeError(`mask is ${mask.width}x${mask.height}, the image is ${info.width}x${info.height}`);
  }
  const rgba = Buffer.alloc(w * h * 4); // [h,w,4]
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const src = (y1 + y) * info.width + x1 + x;
      const dst = (y * w + x) * 4;
      data.copy(rgba, dst, src * 3, src * 3 + 3);
      rgba[dst + 3] = mask.data[src] ? 255 : 0;
    }
  }
  return new Uint8Array(await sharp(rgba, { raw: { width: w, height: h, channels: 4 } }).png().toBuffer());
}

export interface MaskRecord {
  n: number;
  phrase?: string;
  label?: string;
  bbox: Bbox;
  area: number;
  score: number;
  mask: BinaryMask | Rle;
}

/** Every mask as RLE in one JSON document: `{ image: { width, height }, masks: [{ n, phrase?, label?, bbox, area, score, rle }] }`. */
export function masksJson(image: { width: number; height: number }, records: MaskRecord[]): string {
  const masks = records.map(({ mask, ...rest }) => ({ ...rest, rle: 'counts' in mask ? mask : encode(mask) }));
  return JSON.stringify({ image: { width: image.width, height: image.height }, masks }, null, 2);
}
