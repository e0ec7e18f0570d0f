// The mask overlay: masks blended over the image with straight alpha "over" compositing, a contour per mask,
// a numbered label per mask and an optional legend, encoded as PNG or WebP under a byte limit.
// Blending is done here on the raw RGB buffer rather than with sharp's composite, so that where masks overlap
// the later mask lies over the earlier one (out = a*c + (1-a)*under) and colours never add up.
import sharp, { type OverlayOptions, type Sharp } from 'sharp';
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
  // One sharp pipeline from the blended pixels to the encoded image; only an overlay over the byte limit pays
  // for a second pass (composite to raw, then downscale).
  const compose = () => sharp(data, { raw: { width, height, channels: 3 } })
    .extend({ bottom: strip, background: '#FFFFFF' })
    .composite(composites)
    .removeAlpha();
  const bytes = await encode(compose(), format);
  if (bytes.length <= maxBytes) return { bytes: new Uint8Array(bytes), mime: MIME[format], width, height: height + strip };
  const composed = await compose().raw().toBuffer({ resolveWithObject: true });
  return shrinkUnder(composed.data, composed.info, format, maxBytes, bytes.length);
}

const MIME = { png: 'image/png', webp: 'image/webp' } as const;

// zlib level 2: on photo-sized overlays it costs about a third less CPU than the default 6 for files within 1%
// of its size (level 1 is faster still but ~20% larger, which costs more upload time than it saves).
const encode = (pipeline: Sharp, format: 'png' | 'webp'): Promise<Buffer> =>
  format === 'png' ? pipeline.png({ compressionLevel: 2 }).toBuffer() : pipeline.webp({ quality: 85 }).toBuffer();

/** Straight-alpha "over" of one mask's colour onto the buffer inside its bounding box. The blend of every channel
 * value is tabulated once per layer (256 entries), so the pixel loop is table look-ups. */
function fill(rgb: Uint8Array, width: number, { colour, map }: PreparedLayer, alpha: number): void {
  const luts = colour.rgb.map((c) => Uint8Array.from({ length: 256 }, (_, v) => Math.round(alpha * c + (1 - alpha) * v)));
  const [lr, lg, lb] = luts as [Uint8Array, Uint8Array, Uint8Array];
  const { dist, width: w } = map;
  for (let y = 1; y < map.height - 1; y++) {
    const row = y * w;
    let o = ((map.y0 + y) * width + map.x0 + 1) * 3;
    for (let i = row + 1, end = row + w - 1; i < end; i++, o += 3) {
      if (dist[i] === 0) continue;
      rgb[o] = lr[rgb[o]!]!;
      rgb[o + 1] = lg[rgb[o + 1]!]!;
      rgb[o + 2] = lb[rgb[o + 2]!]!;
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

/** Downscales by the square root of the excess (plus a margin) until the encoded image is under the byte limit. */
async function shrinkUnder(
  raw: Buffer,
  { width, height, channels }: { width: number; height: number; channels: 1 | 2 | 3 | 4 },
  format: 'png' | 'webp',
  maxBytes: number,
  lastBytes: number,
): Promise<RenderedImage> {
  let scale = 1;
  for (let attempt = 0; attempt < 6; attempt++) {
    scale *= Math.sqrt(maxBytes / lastBytes) * 0.9;
    const w = Math.max(1, Math.round(width * scale));
    const h = Math.max(1, Math.round(height * scale));
    const bytes = await encode(sharp(raw, { raw: { width, height, channels } }).removeAlpha().resize(w, h, { kernel: 'lanczos3' }), format);
    if (bytes.length <= maxBytes) return { bytes: new Uint8Array(bytes), mime: MIME[format], width: w, height: h };
    lastBytes = bytes.length;
  }
  throw omgError('OMG_ERR_INTERNAL', { reason: `overlay does not fit in ${maxBytes} bytes` });
}
