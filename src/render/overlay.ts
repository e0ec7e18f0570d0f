// The mask overlay: masks blended over the image with straight alpha "over" compositing, a contour per mask,
// a numbered label per mask and an optional legend, encoded as PNG or WebP under a byte limit.
// Blending is done here on the raw RGB buffer rather than with sharp's composite, so that where masks overlap
// the later mask lies over the earlier one (out = a*c + (1-a)*under) and colours never add up.
import sharp, { type OverlayOptions } from 'sharp';
import { omgError } from '../errors.js';
import { distanceMap, interiorPoint, type DistanceMap } from './distance.js';
import { labelComposite } from './labels.js';
import { legendSvg } from './legend.js';
import { colourFor, type PaletteColour } from './palette.js';
import type { BinaryMask } from './rle.js';

export interface OverlayLayer {
  n: number; // region number: picks the colour and the label
  mask: BinaryMask; // at the image's size
  phrase?: string; // legend text
}

export interface RenderOptions {
  alpha?: number; // fill opacity, default 0.45
  contour?: boolean; // default true
  labels?: boolean; // default true
  legend?: boolean; // default false
  format?: 'png' | 'webp'; // default png
  maxBytes?: number; // default 8 MiB (Discord's upload limit); the image is downscaled until it fits
}

export interface RenderedImage {
  bytes: Uint8Array;
  mime: 'image/png' | 'image/webp';
  width: number;
  height: number;
}

export const DEFAULT_MAX_BYTES = 8 * 1024 * 1024;

interface PreparedLayer {
  layer: OverlayLayer;
  colour: PaletteColour;
  map: DistanceMap;
}

/** Contour thickness in pixels: one pixel on small images, a little more on large photos. */
const contourWidth = (width: number, height: number) => Math.max(1, Math.round(Math.min(width, height) / 400));

export async function renderOverlay(image: Uint8Array, layers: OverlayLayer[], options: RenderOptions = {}): Promise<RenderedImage> {
  const { alpha = 0.45, contour = true, labels = true, legend = false, format = 'png', maxBytes = DEFAULT_MAX_BYTES } = options;
  const { data, info } = await sharp(image).autoOrient().flatten({ background: '#FFFFFF' }).toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  const { width, height } = info;
  const rgb = new Uint8Array(data.buffer, data.byteOffset, data.length); // [H,W,3]
  for (const { mask, n } of layers) {
    if (mask.width !== width || mask.height !== height) {
      throw new RangeError(`mask #${n} is ${mask.width}x${mask.height}, the image is ${width}x${height}`);
    }
  }
  const prepared = layers.flatMap((layer): PreparedLayer[] => {
    const map = distanceMap(layer.mask);
    return map ? [{ layer, colour: colourFor(layer.n), map }] : [];
  });

  for (const p of prepared) fill(rgb, width, p, alpha);
  if (contour) {
    const thickness = contourWidth(width, height);
    for (const p of prepared) paintContour(rgb, width, p, thickness);
  }

  const composites: OverlayOptions[] = labels
    ? prepared.map((p) => labelComposite(p.layer.n, p.colour, interiorPoint(p.map), { width, height }))
    : [];
  let strip = 0;
  if (legend && prepared.length > 0) {
    const entries = prepared.map((p) => ({ n: p.layer.n, colour: p.colour, text: p.layer.phrase ?? '' }));
    const { svg, height: h } = legendSvg(width, height, entries);
    composites.push({ input: svg, left: 0, top: height });
    strip = h;
  }
  const composed = await sharp(data, { raw: { width, height, channels: 3 } })
    .extend({ bottom: strip, background: '#FFFFFF' })
    .composite(composites)
    .raw()
    .toBuffer({ resolveWithObject: true });
  return encodeUnder(composed.data, composed.info, format, maxBytes);
}

/** Straight-alpha "over" of one mask's colour onto the buffer, pixel by pixel inside its bounding box. */
function fill(rgb: Uint8Array, width: number, { colour, map }: PreparedLayer, alpha: number): void {
  const [r, g, b] = colour.rgb;
  for (let y = 1; y < map.height - 1; y++) {
    for (let x = 1; x < map.width - 1; x++) {
      if (!map.dist[y * map.width + x]) continue;
      const o = ((map.y0 + y) * width + map.x0 + x) * 3;
      rgb[o] = Math.round(alpha * r + (1 - alpha) * rgb[o]!);
      rgb[o + 1] = Math.round(alpha * g + (1 - alpha) * rgb[o + 1]!);
      rgb[o + 2] = Math.round(alpha * b + (1 - alpha) * rgb[o + 2]!);
    }
  }
}

/** The mask's own pixels within `thickness` of its background, painted opaque in its colour. */
function paintContour(rgb: Uint8Array, width: number, { colour, map }: PreparedLayer, thickness: number): void {
  for (let y = 1; y < map.height - 1; y++) {
    for (let x = 1; x < map.width - 1; x++) {
      const d = map.dist[y * map.width + x]!;
      if (d === 0 || d > thickness) continue;
      rgb.set(colour.rgb, ((map.y0 + y) * width + map.x0 + x) * 3);
    }
  }
}

/** Encodes, and while the result is over the byte limit, downscales by the square root of the excess (plus a margin). */
async function encodeUnder(
  raw: Buffer,
  { width, height, channels }: { width: number; height: number; channels: 1 | 2 | 3 | 4 }, // composites may add an alpha band
  format: 'png' | 'webp',
  maxBytes: number,
): Promise<RenderedImage> {
  let scale = 1;
  for (let attempt = 0; attempt < 6; attempt++) {
    const w = Math.max(1, Math.round(width * scale));
    const h = Math.max(1, Math.round(height * scale));
    let pipeline = sharp(raw, { raw: { width, height, channels } }).removeAlpha();
    if (scale < 1) pipeline = pipeline.resize(w, h, { kernel: 'lanczos3' });
    const bytes = format === 'png' ? await pipeline.png().toBuffer() : await pipeline.webp({ quality: 85 }).toBuffer();
    if (bytes.length <= maxBytes) {
      return { bytes: new Uint8Array(bytes), mime: format === 'png' ? 'image/png' : 'image/webp', width: w, height: h };
    }
    scale *= Math.sqrt(maxBytes / bytes.length) * 0.9;
  }
  throw omgError('OMG_ERR_INTERNAL', { reason: `overlay does not fit in ${maxBytes} bytes` });
}
