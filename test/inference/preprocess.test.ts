import { readFileSync } from 'node:fs';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { decodeRgb, fromInputSpace, geometryFor, padToSquare, resizeBicubic, toInputSpace } from '../../src/inference/preprocess.js';

const fixture = (name: string) => new Uint8Array(readFileSync(new URL(`./fixtures/${name}`, import.meta.url)));
const PAD = [122, 116, 104];

describe('geometry', () => {
  it('pads a landscape image at the top by floor(|W-H|/2)', () => {
    expect(geometryFor(45, 30, 128)).toEqual({ width: 45, height: 30, side: 45, padLeft: 0, padTop: 7, inputSize: 128 });
  });

  it('pads a portrait image on the left by floor(|W-H|/2)', () => {
    expect(geometryFor(30, 47, 256)).toMatchObject({ side: 47, padLeft: 8, padTop: 0 });
  });

  it('leaves a square image unpadded', () => {
    expect(geometryFor(64, 64, 128)).toMatchObject({ side: 64, padLeft: 0, padTop: 0 });
  });

  it('maps original pixels into S_in space and back', () => {
    const g = geometryFor(45, 30, 128);
    // (x + 0) * 128/45, (y + 7) * 128/45
    const [x, y] = toInputSpace(g, 9, 3);
    expect(x).toBeCloseTo((9 * 128) / 45, 10);
    expect(y).toBeCloseTo((10 * 128) / 45, 10);
    const [bx, by] = fromInputSpace(g, x, y);
    expect(bx).toBeCloseTo(9, 10);
    expect(by).toBeCloseTo(3, 10);
  });

  it('pastes the image at the offset on a pad-colour canvas', () => {
    const img = { width: 3, height: 1, data: new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9]) };
    const sq = padToSquare(img, geometryFor(3, 1, 8), PAD);
    expect(Array.from(sq.data.subarray(0, 9))).toEqual([...PAD, ...PAD, ...PAD]); // row 0: padding
    expect(Array.from(sq.data.subarray(9, 18))).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]); // row 1: the image
    expect(Array.from(sq.data.subarray(18, 27))).toEqual([...PAD, ...PAD, ...PAD]);
  });
});

describe('Pillow-exact bicubic resize', () => {
  // Reference images written by fixtures/make_pil_fixtures.py with PIL's Image.resize(BICUBIC).
  for (const [w, h, out] of [[45, 30, 128], [80, 120, 64]] as const) {
    it(`matches PIL bit for bit: ${w}x${h} padded, to ${out}x${out}`, async () => {
      const img = await decodeRgb(fixture(`pil-${w}x${h}.png`));
      const want = await decodeRgb(fixture(`pil-${w}x${h}-bicubic${out}.png`));
      const got = resizeBicubic(padToSquare(img, geometryFor(w, h, out), PAD), out, out);
      expect(got.width).toBe(out);
      expect(Buffer.from(got.data).equals(Buffer.from(want.data))).toBe(true);
    });
  }
});

describe('decodeRgb', () => {
  it('drops alpha without compositing, like PIL convert("RGB")', async () => {
    const rgba = new Uint8Array([10, 20, 30, 0, 200, 100, 50, 128]);
    const png = await sharp(rgba, { raw: { width: 2, height: 1, channels: 4 } }).png().toBuffer();
    const img = await decodeRgb(new Uint8Array(png));
    expect(Array.from(img.data)).toEqual([10, 20, 30, 200, 100, 50]);
  });

  it('ignores an embedded ICC profile, as PIL does (p3-8x8-pil-rgb.png is what PIL read)', async () => {
    const got = await decodeRgb(fixture('p3-8x8.png'));
    const want = await decodeRgb(fixture('p3-8x8-pil-rgb.png'));
    expect(Array.from(got.data)).toEqual(Array.from(want.data));
  });

  it('expands grey to RGB', async () => {
    const png = await sharp(new Uint8Array([7, 250]), { raw: { width: 2, height: 1, channels: 1 } }).png().toBuffer();
    expect(Array.from((await decodeRgb(new Uint8Array(png))).data)).toEqual([7, 7, 7, 250, 250, 250]);
  });

  it('does not apply EXIF orientation', async () => {
    const jpeg = await sharp({ create: { width: 40, height: 20, channels: 3, background: '#808080' } })
      .jpeg().withMetadata({ orientation: 6 }).toBuffer();
    expect((await sharp(jpeg).metadata()).orientation).toBe(6); // "rotate 90° clockwise to display"
    const img = await decodeRgb(new Uint8Array(jpeg));
    expect([img.width, img.height]).toEqual([40, 20]);
  });

  it('throws OMG_ERR_IMAGE_DECODE for bytes that are not an image', async () => {
    await expect(decodeRgb(new TextEncoder().encode('not an image at all'))).rejects.toMatchObject({ code: 'OMG_ERR_IMAGE_DECODE' });
  });
});
