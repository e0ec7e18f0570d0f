import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { renderOverlay } from '../../src/render/overlay.js';
import type { BinaryMask } from '../../src/render/rle.js';

const W = 12;
const H = 8;

async function solidPng(width: number, height: number, rgb: [number, number, number]): Promise<Uint8Array> {
  const png = await sharp({ create: { width, height, channels: 3, background: { r: rgb[0], g: rgb[1], b: rgb[2] } } }).png().toBuffer();
  return new Uint8Array(png);
}

function columns(from: number, to: number): BinaryMask {
  const data = new Uint8Array(W * H);
  for (let y = 0; y < H; y++) for (let x = from; x <= to; x++) data[y * W + x] = 1;
  return { width: W, height: H, data };
}

async function pixels(bytes: Uint8Array) {
  const { data, info } = await sharp(bytes).raw().toBuffer({ resolveWithObject: true });
  return { info, at: (x: number, y: number) => Array.from(data.subarray((y * info.width + x) * info.channels, (y * info.width + x) * info.channels + 3)) };
}

describe('renderOverlay', () => {
  // Grey image; mask #1 (orange #E69F00) on columns 0-7, mask #2 (sky blue #56B4E9) on columns 4-11, alpha 0.6.
  const layers = [
    { n: 1, mask: columns(0, 7) },
    { n: 2, mask: columns(4, 11) },
  ];

  it('composites later masks over earlier ones with straight alpha, and draws opaque contours', async () => {
    const image = await solidPng(W, H, [100, 100, 100]);
    const out = await renderOverlay(image, layers, { alpha: 0.6, labels: false });
    expect(out.mime).toBe('image/png');
    const { info, at } = await pixels(out.bytes);
    expect([info.width, info.height]).toEqual([W, H]);
    // Only #1 at (1,3): 0.6*(230,159,0) + 0.4*100 = (178, 135.4, 40) -> (178, 135, 40)
    expect(at(1, 3)).toEqual([178, 135, 40]);
    // Only #2 at (10,3): 0.6*(86,180,233) + 0.4*100 = (91.6, 148, 179.8) -> (92, 148, 180)
    expect(at(10, 3)).toEqual([92, 148, 180]);
    // Both at (5,3): #2 over the #1 result: 0.6*(86,180,233) + 0.4*(178,135,40) = (122.8, 162, 155.8) -> (123, 162, 156)
    expect(at(5, 3)).toEqual([123, 162, 156]);
    // Contours (1 px) sit over every fill: #1's left and right edges, #2's left edge inside #1.
    expect(at(0, 3)).toEqual([230, 159, 0]);
    expect(at(7, 3)).toEqual([230, 159, 0]);
    expect(at(4, 3)).toEqual([86, 180, 233]);
    // The image border closes the contour: top row of #2's own part.
    expect(at(10, 0)).toEqual([86, 180, 233]);
  });

  it('without contours, blends every mask pixel', async () => {
    const image = await solidPng(W, H, [100, 100, 100]);
    const { at } = await pixels((await renderOverlay(image, layers, { alpha: 0.6, labels: false, contour: false })).bytes);
    expect(at(0, 0)).toEqual([178, 135, 40]);
    expect(at(4, 3)).toEqual([123, 162, 156]);
  });

  it('puts a numbered label on the mask interior and a legend under the image', async () => {
    const big = 120;
    const image = await solidPng(big, big, [255, 255, 255]);
    const data = new Uint8Array(big * big);
    for (let y = 20; y < 100; y++) for (let x = 30; x < 90; x++) data[y * big + x] = 1;
    const layer = { n: 3, mask: { width: big, height: big, data }, phrase: 'a <big> square' };
    const plain = await pixels((await renderOverlay(image, [layer], { labels: false })).bytes);
    const labelled = await pixels((await renderOverlay(image, [layer], { legend: true })).bytes);
    // The label (black outline, text) changes pixels around the interior point (59/60, 59/60) and nowhere near the corners.
    let changedNearCentre = 0;
    for (let y = 52; y < 68; y++) for (let x = 52; x < 68; x++) if (labelled.at(x, y).join() !== plain.at(x, y).join()) changedNearCentre++;
    expect(changedNearCentre).toBeGreaterThan(20);
    expect(labelled.at(35, 25)).toEqual(plain.at(35, 25));
    // Legend strip: taller image, white background, the swatch in #3's colour (bluish green #009E73).
    expect(labelled.info.width).toBe(big);
    expect(labelled.info.height).toBeGreaterThan(big);
    const swatchCentre = labelled.at(Math.round(2 + 11 / 2), big + Math.round(5 + 17.6 / 2));
    expect(swatchCentre).toEqual([0, 158, 115]);
  });

  it('stays under the byte limit by downscaling', async () => {
    const size = 160;
    const noise = Buffer.alloc(size * size * 3);
    let seed = 1;
    for (let i = 0; i < noise.length; i++) noise[i] = (seed = (Math.imul(seed, 1103515245) + 12345) & 0x7fffffff) >> 23;
    const image = new Uint8Array(await sharp(noise, { raw: { width: size, height: size, channels: 3 } }).png().toBuffer());
    expect(image.length).toBeGreaterThan(40_000);
    const out = await renderOverlay(image, [], { maxBytes: 20_000 });
    expect(out.bytes.length).toBeLessThanOrEqual(20_000);
    expect(out.width).toBeLessThan(size);
    const webp = await renderOverlay(image, [], { format: 'webp', maxBytes: 20_000 });
    expect(webp.mime).toBe('image/webp');
    expect((await sharp(webp.bytes).metadata()).format).toBe('webp');
  });

  it('refuses a mask of another size', async () => {
    const image = await solidPng(W + 1, H, [0, 0, 0]);
    await expect(renderOverlay(image, layers)).rejects.toThrow(/mask #1 is 12x8, the image is 13x8/);
  });
});
