// A scene like the nano model's training data (flat shapes on a light background) with a known red circle,
// drawn by sharp from SVG without anti-aliasing so the truth mask is exact.
import sharp from 'sharp';

export const scene = { width: 320, height: 240, circle: { cx: 110, cy: 120, r: 60 } } as const;

const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${scene.width}" height="${scene.height}" shape-rendering="crispEdges">
  <rect width="100%" height="100%" fill="rgb(238,236,232)"/>
  <rect x="210" y="60" width="80" height="80" fill="rgb(40,80,220)"/>
  <circle cx="${scene.circle.cx}" cy="${scene.circle.cy}" r="${scene.circle.r}" fill="rgb(220,40,40)"/>
</svg>`;

export function scenePng(): Promise<Buffer> {
  return sharp(Buffer.from(svg)).removeAlpha().png().toBuffer();
}

/** The circle as a 0/1 mask: a pixel belongs to it when its centre lies inside. */
export function circleTruth(): Uint8Array {
  const { width, height, circle } = scene;
  const truth = new Uint8Array(width * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      truth[y * width + x] = (x + 0.5 - circle.cx) ** 2 + (y + 0.5 - circle.cy) ** 2 <= circle.r ** 2 ? 1 : 0;
    }
  }
  return truth;
}

/** A mask PNG (any channels; non-zero first channel = set) as 0/1 values, checked against the scene size. */
export async function maskFromPng(png: Uint8Array): Promise<Uint8Array> {
  const { data, info } = await sharp(png).extractChannel(0).raw().toBuffer({ resolveWithObject: true });
  if (info.width !== scene.width || info.height !== scene.height) {
    throw new Error(`mask is ${info.width}x${info.height}, expected the image size ${scene.width}x${scene.height}`);
  }
  return Uint8Array.from(data, (v) => (v > 127 ? 1 : 0));
}

export function iou(a: Uint8Array, b: Uint8Array): number {
  let inter = 0;
  let union = 0;
  for (let i = 0; i < a.length; i++) {
    inter += a[i]! & b[i]!;
    union += a[i]! | b[i]!;
  }
  return union === 0 ? 0 : inter / union;
}
