import { deflateSync } from 'node:zlib';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { acceptImage, inspectImage, sniffImage } from '../../src/conversation/image.js';
import { OmgError } from '../../src/errors.js';

const limits = { maxBytes: 1_000_000, maxPixels: 1_000_000 };

async function png(width: number, height: number): Promise<Uint8Array> {
  return new Uint8Array(await sharp({ create: { width, height, channels: 3, background: '#3080c0' } }).png().toBuffer());
}

/** A PNG whose header claims width x height over one tiny zlib stream: the shape of a decompression bomb. */
function bombHeader(width: number, height: number): Uint8Array {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (buf: Buffer) => {
    let c = 0xffffffff;
    for (const b of buf) c = crcTable[(c ^ b) & 0xff]! ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type: string, data: Buffer) => {
    const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const out = Buffer.alloc(body.length + 8);
    out.writeUInt32BE(data.length, 0);
    body.copy(out, 4);
    out.writeUInt32BE(crc(body), body.length + 4);
    return out;
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 0, 0, 0, 0], 8); // 8-bit greyscale
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return new Uint8Array(Buffer.concat([signature, chunk('IHDR', ihdr), chunk('IDAT', deflateSync(Buffer.alloc(1024))), chunk('IEND', Buffer.alloc(0))]));
}

async function refusal(p: Promise<unknown>): Promise<OmgError> {
  const err = await p.then(() => null, (e: unknown) => e);
  expect(err).toBeInstanceOf(OmgError);
  return err as OmgError;
}

describe('image intake', () => {
  it('recognises images by magic bytes', async () => {
    expect(sniffImage(await png(2, 2))).toBe('image/png');
    expect(sniffImage(new Uint8Array(await sharp(await png(2, 2)).jpeg().toBuffer()))).toBe('image/jpeg');
    expect(sniffImage(new Uint8Array(await sharp(await png(2, 2)).webp().toBuffer()))).toBe('image/webp');
    expect(sniffImage(new Uint8Array(await sharp(await png(2, 2)).gif().toBuffer()))).toBe('image/gif');
    expect(sniffImage(new Uint8Array(await sharp(await png(2, 2)).tiff().toBuffer()))).toBe('image/tiff');
  });

  it('returns type, size and sha256 of an accepted image', async () => {
    const bytes = await png(45, 30);
    const info = await inspectImage(bytes, limits);
    expect(info).toMatchObject({ mime: 'image/png', width: 45, height: 30 });
    expect(info.hash).toMatch(/^[0-9a-f]{64}$/);
    const accepted = await acceptImage(bytes, limits);
    expect(accepted.bytes).toBe(bytes); // kept as sent
    expect(accepted.hash).toBe(info.hash);
  });

  it('refuses empty files, text named .png, SVG and PDF as not images', async () => {
    expect((await refusal(inspectImage(new Uint8Array(0), limits))).code).toBe('OMG_ERR_IMAGE_TYPE');
    const text = await refusal(inspectImage(new TextEncoder().encode('hello, this is not a picture\n'), limits));
    expect(text.code).toBe('OMG_ERR_IMAGE_TYPE');
    expect(text.userMessage).toContain('text/plain');
    const svg = await refusal(inspectImage(new TextEncoder().encode('<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>'), limits));
    expect(svg.userMessage).toContain('image/svg+xml');
    const pdf = await refusal(inspectImage(new TextEncoder().encode('%PDF-1.7\n%\u00e2\u00e3'), limits));
    expect(pdf.userMessage).toContain('application/pdf');
  });

  it('refuses truncated PNG and JPEG files', async () => {
    const whole = await png(64, 64);
    const cut = whole.subarray(0, Math.floor(whole.length * 0.6));
    expect((await refusal(acceptImage(cut, limits))).code).toBe('OMG_ERR_IMAGE_DECODE');
    expect((await refusal(acceptImage(whole.subarray(0, 20), limits))).code).toBe('OMG_ERR_IMAGE_DECODE');
    const jpeg = new Uint8Array(await sharp(whole).jpeg().toBuffer());
    expect((await refusal(acceptImage(jpeg.subarray(0, jpeg.length - 40), limits))).code).toBe('OMG_ERR_IMAGE_DECODE');
  });

  it('refuses files over the byte cap and decompression bombs from the header alone', async () => {
    expect((await refusal(inspectImage(await png(40, 40), { maxBytes: 50, maxPixels: 10_000 }))).code).toBe('OMG_ERR_IMAGE_TOO_LARGE');
    const bomb = bombHeader(100_000, 100_000);
    expect(bomb.length).toBeLessThan(200);
    const err = await refusal(inspectImage(bomb, limits));
    expect(err.code).toBe('OMG_ERR_IMAGE_TOO_MANY_PIXELS');
    expect(err.userMessage).toContain('100000x100000');
    expect((await refusal(inspectImage(await png(1001, 1000), limits))).code).toBe('OMG_ERR_IMAGE_TOO_MANY_PIXELS');
  });

  it('turns GIF and rotated JPEG into an upright PNG', async () => {
    const gif = new Uint8Array(await sharp(await png(6, 4)).gif().toBuffer());
    const fromGif = await acceptImage(gif, limits);
    expect(fromGif).toMatchObject({ mime: 'image/png', width: 6, height: 4 });
    expect(sniffImage(fromGif.bytes)).toBe('image/png');
    // Orientation 6 = stored landscape, shown rotated 90° clockwise: the upright image is 4 wide and 6 high.
    const rotated = new Uint8Array(await sharp(await png(6, 4)).jpeg().withMetadata({ orientation: 6 }).toBuffer());
    const upright = await acceptImage(rotated, limits);
    expect(upright).toMatchObject({ mime: 'image/png', width: 4, height: 6 });
    expect(await sharp(upright.bytes).metadata()).toMatchObject({ width: 4, height: 6 });
  });
});
