// Image preprocessing as upstream does it with PIL (omg-llava.md §3): decode without EXIF rotation, RGB with alpha
// dropped (not composited), pad to a square at the floor offset, Pillow-exact bicubic resize on uint8, then
// normalise to CHW float32. Also the geometry that maps original <-> padded <-> S_in coordinates.
import sharp from 'sharp';
import { omgError } from '../errors.js';
import type { ModelConfig } from './bundle.js';

export interface RgbImage { width: number; height: number; data: Uint8Array } // [H,W,3] uint8

/** Where the original image sits in the padded square and how the square maps to the model input. */
export interface Geometry {
  width: number; height: number; // original W, H
  side: number; // S = max(W, H)
  padLeft: number; padTop: number; // floor(|W-H|/2) on the short axis, 0 on the other
  inputSize: number; // S_in
}

export function geometryFor(width: number, height: number, inputSize: number): Geometry {
  const side = Math.max(width, height);
  return {
    width, height, side, inputSize,
    padLeft: Math.floor((side - width) / 2),
    padTop: Math.floor((side - height) / 2),
  };
}

/** Original pixel coordinates -> S_in space: shift by the padding, then scale S -> S_in. */
export function toInputSpace(g: Geometry, x: number, y: number): [number, number] {
  const scale = g.inputSize / g.side;
  return [(x + g.padLeft) * scale, (y + g.padTop) * scale];
}

/** S_in space -> original pixel coordinates (inverse of toInputSpace). */
export function fromInputSpace(g: Geometry, x: number, y: number): [number, number] {
  const scale = g.side / g.inputSize;
  return [x * scale - g.padLeft, y * scale - g.padTop];
}

/** Decodes encoded bytes to RGB like PIL `convert('RGB')`: no EXIF rotation, alpha channel dropped, grey expanded. */
export async function decodeRgb(bytes: Uint8Array): Promise<RgbImage> {
  try {
    // sharp applies EXIF orientation only when asked (rotate() / autoOrient), so none is applied here. PIL also
    // ignores embedded ICC profiles (e.g. Display P3 photos); keeping the profile stops sharp converting the pixels.
    const { data, info } = await sharp(bytes, { failOn: 'error' })
      .keepIccProfile()
      .toColourspace('srgb')
      .removeAlpha()
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new Error(`decoded ${info.channels} channels`);
    return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.length) };
  } catch (err) {
    throw omgError('OMG_ERR_IMAGE_DECODE', { reason: String(err) }, err);
  }
}

/** Pastes the image into an S x S canvas of pad_color at (padLeft, padTop) (upstream `expand2square`). */
export function padToSquare(img: RgbImage, g: Geometry, padColor: readonly number[]): RgbImage {
  const s = g.side;
  const out = new Uint8Array(s * s * 3);
  // Fill with the pad colour by doubling copies (one set() per pixel took ~50 ms on a 1024 px photo).
  out.set(padColor.slice(0, 3), 0);
  for (let filled = 3; filled < out.length; filled *= 2) out.copyWithin(filled, 0, Math.min(filled, out.length - filled));
  for (let y = 0; y < img.height; y++) {
    const src = img.data.subarray(y * img.width * 3, (y + 1) * img.width * 3);
    out.set(src, ((y + g.padTop) * s + g.padLeft) * 3);
  }
  return { width: s, height: s, data: out };
}

// Pillow's fixed-point resampling (libImaging/Resample.c): coefficients are scaled by 2^22 and rounded.
const PRECISION_BITS = 32 - 8 - 2;
const BICUBIC_SUPPORT = 2;

function bicubic(x: number): number {
  const a = -0.5;
  x = Math.abs(x);
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
  return 0;
}

/** Pillow `precompute_coeffs` + `normalize_coeffs_8bpc`: per output index, its first input index, tap count and taps. */
function coefficients(inSize: number, outSize: number): { ksize: number; bounds: Int32Array; kk: Int32Array } {
  const scale = inSize / outSize;
  const filterscale = Math.max(scale, 1); // widen the kernel when downscaling (antialias)
  const support = BICUBIC_SUPPORT * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const kk = new Int32Array(outSize * ksize);
  const w = new Float64Array(ksize);
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0); // C (int) cast truncates
    const xmax = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      w[x] = bicubic((x + xmin - center + 0.5) / filterscale);
      ww += w[x]!;
    }
    for (let x = 0; x < xmax; x++) {
      const k = ww !== 0 ? w[x]! / ww : w[x]!;
      kk[xx * ksize + x] = Math.trunc(k < 0 ? -0.5 + k * (1 << PRECISION_BITS) : 0.5 + k * (1 << PRECISION_BITS));
    }
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  return { ksize, bounds, kk };
}

function clip8(v: number): number {
  if (v >= 2 ** (PRECISION_BITS + 8)) return 255;
  if (v <= 0) return 0;
  return Math.floor(v / 2 ** PRECISION_BITS);
}

/**
 * Bicubic resize of an RGB uint8 image, bit-exact with Pillow's `Image.resize(size, BICUBIC)`: a horizontal pass
 * over the rows the vertical pass needs, uint8 rounding and clipping in between, then a vertical pass.
 */
export function resizeBicubic(img: RgbImage, outW: number, outH: number): RgbImage {
  if (outW === img.width && outH === img.height) return { ...img, data: img.data.slice() };
  const h = coefficients(img.width, outW);
  const v = coefficients(img.height, outH);
  const yFirst = v.bounds[0]!;
  const yLast = v.bounds[outH * 2 - 2]! + v.bounds[outH * 2 - 1]!;
  const rows = yLast - yFirst;
  const half = 1 << (PRECISION_BITS - 1);

  const tmp = new Uint8Array(outW * rows * 3); // [rows, outW, 3]
  for (let y = 0; y < rows; y++) {
    const rowIn = (y + yFirst) * img.width * 3;
    for (let xx = 0; xx < outW; xx++) {
      const xmin = h.bounds[xx * 2]!, xmax = h.bounds[xx * 2 + 1]!, k = xx * h.ksize;
      let s0 = half, s1 = half, s2 = half;
      for (let x = 0; x < xmax; x++) {
        const c = h.kk[k + x]!, p = rowIn + (x + xmin) * 3;
        s0 += img.data[p]! * c; s1 += img.data[p + 1]! * c; s2 += img.data[p + 2]! * c;
      }
      const o = (y * outW + xx) * 3;
      tmp[o] = clip8(s0); tmp[o + 1] = clip8(s1); tmp[o + 2] = clip8(s2);
    }
  }

  const out = new Uint8Array(outW * outH * 3);
  for (let yy = 0; yy < outH; yy++) {
    const ymin = v.bounds[yy * 2]! - yFirst, ymax = v.bounds[yy * 2 + 1]!, k = yy * v.ksize;
    for (let xx = 0; xx < outW; xx++) {
      let s0 = half, s1 = half, s2 = half;
      for (let y = 0; y < ymax; y++) {
        const c = v.kk[k + y]!, p = ((y + ymin) * outW + xx) * 3;
        s0 += tmp[p]! * c; s1 += tmp[p + 1]! * c; s2 += tmp[p + 2]! * c;
      }
      const o = (yy * outW + xx) * 3;
      out[o] = clip8(s0); out[o + 1] = clip8(s1); out[o + 2] = clip8(s2);
    }
  }
  return { width: outW, height: outH, data: out };
}

/** uint8 HWC -> pixel_values [1,3,S_in,S_in] float32: x/255, then (x - mean)/std per RGB channel. */
export function normalize(img: RgbImage, mean: readonly number[], std: readonly number[]): Float32Array {
  const n = img.width * img.height;
  const out = new Float32Array(3 * n);
  for (let c = 0; c < 3; c++) {
    const m = mean[c]!, s = std[c]!;
    for (let i = 0; i < n; i++) out[c * n + i] = (img.data[i * 3 + c]! / 255 - m) / s;
  }
  return out;
}

export interface Preprocessed { pixelValues: Float32Array; geometry: Geometry } // pixelValues [1,3,S_in,S_in]

/** The whole preprocessing of §3 for one decoded image. */
export function preprocess(img: RgbImage, config: ModelConfig): Preprocessed {
  const size = config.image_size;
  const geometry = geometryFor(img.width, img.height, size);
  const square = padToSquare(img, geometry, config.preprocess.pad_color);
  const resized = resizeBicubic(square, size, size);
  return { pixelValues: normalize(resized, config.preprocess.mean, config.preprocess.std), geometry };
}
