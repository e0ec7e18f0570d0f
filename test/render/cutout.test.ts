import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { bboxOf, cutoutPng, maskPng, masksJson } from '../../src/render/cutout.js';
import { decode } from '../../src/render/rle.js';

// 4x3 mask with pixels (1,0), (1,1), (2,1)
const mask = { width: 4, height: 3, data: Uint8Array.from([0, 1, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0]) };

describe('cutouts', () => {
  it('finds the exclusive bounding box', () => {
    expect(bboxOf(mask)).toEqual([1, 0, 3, 2]);
    expect(bboxOf({ width: 2, height: 2, data: new Uint8Array(4) })).toBeNull();
  });

  it('writes binary mask PNGs at the original size', async () => {
    const png = await maskPng(mask);
    expect(await sharp(png).metadata()).toMatchObject({ width: 4, height: 3, channels: 1 });
    const { data } = await sharp(png).extractChannel(0).raw().toBuffer({ resolveWithObject: true });
    expect(Array.from(data)).toEqual(Array.from(mask.data, (v) => v * 255));
  });

  it('cuts the masked pixels out of the image with transparency elsewhere', async () => {
    const rgb = Buffer.from(Array.from({ length: 12 }, (_, i) => [i * 10, i * 20, 7]).flat());
    const image = new Uint8Array(await sharp(rgb, { raw: { width: 4, height: 3, channels: 3 } }).png().toBuffer());
    const { data, info } = await sharp((await cutoutPng(image, mask))!).raw().toBuffer({ resolveWithObject: true });
    expect([info.width, info.height, info.channels]).toEqual([2, 2, 4]);
    // (1,0) = pixel 1, (2,0) = pixel 2 (outside), (1,1) = pixel 5, (2,1) = pixel 6
    expect(Array.from(data)).toEqual([10, 20, 7, 255, 20, 40, 7, 0, 50, 100, 7, 255, 60, 120, 7, 255]);
  });

  it('writes RLE JSON that decodes back to the masks', () => {
    const json = JSON.parse(masksJson({ width: 4, height: 3 }, [{ n: 2, phrase: 'a dog', bbox: [1, 0, 3, 2], area: 3, score: 0.9, mask }]));
    expect(json.image).toEqual({ width: 4, height: 3 });
    expect(json.masks[0]).toMatchObject({ n: 2, phrase: 'a dog', bbox: [1, 0, 3, 2], area: 3, score: 0.9 });
    expect(decode(json.masks[0].rle)).toEqual(mask);
  });
});
