// Byte generators for the bad-input corpus: every file is made here from a seed or a few parameters, so the
// corpus needs no committed binaries and each file reads the same on every run.
import { crc32, deflateSync } from 'node:zlib';
import sharp, { type Sharp } from 'sharp';

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** Deterministic noise (xorshift), so noisy images compress badly and look the same on every run. */
export function noise(length: number, seed = 7): Buffer {
  const out = Buffer.alloc(length);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = s & 0xff;
  }
  return out;
}

const bytes = async (image: Sharp) => new Uint8Array(await image.toBuffer());

/** A scene the model can look at: a red disc on a blue ground, drawn as SVG and rasterised by sharp. */
export function scene(width = 64, height = 48): Sharp {
  const r = Math.max(1, Math.min(width, height) / 3);
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">
    <rect width="100%" height="100%" fill="#2050a0"/><circle cx="${width / 2}" cy="${height / 2}" r="${r}" fill="#d02020"/></svg>`;
  return sharp(Buffer.from(svg));
}

export const scenePng = (width?: number, height?: number) => bytes(scene(width, height).png());
export const sceneJpeg = (width?: number, height?: number) => bytes(scene(width, height).jpeg());

export function noisePng(width: number, height: number, seed = 7): Promise<Uint8Array> {
  return bytes(sharp(noise(width * height * 3, seed), { raw: { width, height, channels: 3 } }).png({ compressionLevel: 1 }));
}

export function noiseJpeg(width: number, height: number, seed = 7): Promise<Uint8Array> {
  return bytes(sharp(noise(width * height * 3, seed), { raw: { width, height, channels: 3 } }).jpeg({ quality: 90 }));
}

/** The first `fraction` of a file: an upload cut off in transit. */
export const truncated = (file: Uint8Array, fraction: number) => file.subarray(0, Math.floor(file.length * fraction));

export function pngChunk(type: string, data: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const out = Buffer.alloc(body.length + 8);
  out.writeUInt32BE(data.length, 0);
  body.copy(out, 4);
  out.writeUInt32BE(crc32(body), body.length + 4);
  return out;
}

function ihdr(width: number, height: number, bitDepth: number, colourType: number): Buffer {
  const data = Buffer.alloc(13);
  data.writeUInt32BE(width, 0);
  data.writeUInt32BE(height, 4);
  data.set([bitDepth, colourType, 0, 0, 0], 8);
  return pngChunk('IHDR', data);
}

/**
 * A complete, valid 1-bit greyscale PNG of width x height (all black). 30000x30000 is 900 M pixels in about 110 KB:
 * a decoder that trusted it would need gigabytes.
 */
export function bombPng(width: number, height: number): Uint8Array {
  const row = Buffer.alloc(1 + Math.ceil(width / 8)); // filter byte 0 + packed bits
  const raw = Buffer.alloc(row.length * height);
  return new Uint8Array(Buffer.concat([PNG_SIGNATURE, ihdr(width, height, 1, 0), pngChunk('IDAT', deflateSync(raw, { level: 9 })), pngChunk('IEND', Buffer.alloc(0))]));
}

/** A PNG header claiming width x height RGB over one small zlib stream: a few KB that promise gigabytes. */
export function bombHeaderPng(width: number, height: number): Uint8Array {
  return new Uint8Array(Buffer.concat([PNG_SIGNATURE, ihdr(width, height, 8, 2), pngChunk('IDAT', deflateSync(Buffer.alloc(64 * 1024))), pngChunk('IEND', Buffer.alloc(0))]));
}

/** A real JPEG whose frame header (SOF) is patched to claim width x height. */
export async function bombJpeg(width: number, height: number): Promise<Uint8Array> {
  const file = Buffer.from(await sceneJpeg(16, 16));
  for (let i = 2; i + 9 < file.length; ) {
    const marker = file[i + 1]!;
    if (marker >= 0xc0 && marker <= 0xc2) {
      file.writeUInt16BE(height, i + 5);
      file.writeUInt16BE(width, i + 7);
      return new Uint8Array(file);
    }
    i += 2 + file.readUInt16BE(i + 2);
  }
  throw new Error('no SOF marker in the generated JPEG');
}

/** A valid PNG padded with a private ancillary chunk to `size` bytes: over the byte cap, yet a real image. */
export async function paddedPng(size: number): Promise<Uint8Array> {
  const file = Buffer.from(await scenePng());
  const iend = file.length - 12;
  const pad = pngChunk('zpAd', noise(Math.max(0, size - file.length - 12)));
  return new Uint8Array(Buffer.concat([file.subarray(0, iend), pad, file.subarray(iend)]));
}

/** A PNG whose header says 0x0 pixels. */
export const zeroSizePng = () =>
  new Uint8Array(Buffer.concat([PNG_SIGNATURE, ihdr(0, 0, 8, 2), pngChunk('IDAT', deflateSync(Buffer.alloc(0))), pngChunk('IEND', Buffer.alloc(0))]));

/** A two-frame animation: frame 1 red, frame 2 blue. */
export async function animated(format: 'gif' | 'webp'): Promise<Uint8Array> {
  const frame = (colour: string) => sharp({ create: { width: 40, height: 30, channels: 3, background: colour } }).png().toBuffer();
  const joined = sharp([await frame('#ff0000'), await frame('#0000ff')], { join: { animated: true } });
  return bytes(format === 'gif' ? joined.gif({ delay: [100, 100] }) : joined.webp({ delay: [100, 100] }));
}

export const cmykJpeg = () => bytes(scene().toColourspace('cmyk').jpeg());
export const rgb16Png = () => bytes(scene().toColourspace('rgb16').png());
export const greyPng = () => bytes(scene().greyscale().png());
export const greyJpeg = () => bytes(scene().greyscale().jpeg());
export const palettePng = () => bytes(scene().png({ palette: true, colours: 4 }));
export const interlacedPng = () => bytes(scene().png({ progressive: true }));
export const progressiveJpeg = () => bytes(scene().jpeg({ progressive: true }));
export const tiff = () => bytes(scene().tiff());
export const webp = () => bytes(scene().webp());

/** RGBA with a transparent half: the left half is transparent red over nothing. */
export function alphaImage(format: 'png' | 'webp', channels: 2 | 4 = 4): Promise<Uint8Array> {
  const width = 48;
  const height = 32;
  const data = Buffer.alloc(width * height * channels);
  for (let i = 0; i < width * height; i++) {
    const opaque = i % width >= width / 2;
    if (channels === 4) data.set([200, 30, 30, opaque ? 255 : 0], i * 4);
    else data.set([120, opaque ? 255 : 0], i * 2);
  }
  const image = sharp(data, { raw: { width, height, channels } });
  return bytes(format === 'png' ? image.png() : image.webp({ lossless: true }));
}

/** A 64x48 JPEG (as stored) carrying an EXIF orientation tag. */
export const orientedJpeg = (orientation: number) => bytes(scene(64, 48).jpeg().withMetadata({ orientation }));

export const solidPng = (width: number, height: number) =>
  bytes(sharp({ create: { width, height, channels: 3, background: '#d02020' } }).png());
export const blackPng = (width: number, height: number) =>
  bytes(sharp({ create: { width, height, channels: 3, background: '#000000' } }).png());
export const solidJpeg = (width: number, height: number) =>
  bytes(sharp({ create: { width, height, channels: 3, background: '#d02020' } }).jpeg());

/** A Windows bitmap (24-bit, 2x2): a real image in a format the bot does not take. */
export function bmp(): Uint8Array {
  const header = Buffer.alloc(54);
  header.write('BM', 0, 'ascii');
  header.writeUInt32LE(54 + 16, 2);
  header.writeUInt32LE(54, 10);
  header.writeUInt32LE(40, 14);
  header.writeInt32LE(2, 18);
  header.writeInt32LE(2, 22);
  header.writeUInt16LE(1, 26);
  header.writeUInt16LE(24, 28);
  return new Uint8Array(Buffer.concat([header, Buffer.alloc(16, 0x80)]));
}

export const avif = () => bytes(scene().avif());

/** Bytes after the end of the image: a JPEG with junk after EOI, a PNG with a ZIP appended (a polyglot). */
export async function withTrailer(file: Uint8Array, trailer: Buffer): Promise<Uint8Array> {
  return new Uint8Array(Buffer.concat([file, trailer]));
}
export const ZIP_TRAILER = Buffer.concat([Buffer.from('PK\x03\x04', 'latin1'), noise(200, 11), Buffer.from('PK\x05\x06', 'latin1'), Buffer.alloc(18)]);

/** A PNG whose image data chunk has a wrong CRC. */
export async function badCrcPng(): Promise<Uint8Array> {
  const file = Buffer.from(await scenePng());
  let at = 8;
  while (at < file.length) {
    const length = file.readUInt32BE(at);
    if (file.toString('ascii', at + 4, at + 8) === 'IDAT') {
      file.writeUInt32BE((file.readUInt32BE(at + 8 + length) ^ 0xffffffff) >>> 0, at + 8 + length);
      return new Uint8Array(file);
    }
    at += 12 + length;
  }
  throw new Error('no IDAT chunk in the generated PNG');
}

export const text = (s: string) => new Uint8Array(Buffer.from(s, 'utf8'));

export const PDF = text('%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n');
// External references a naive rasteriser would fetch: the refusal must come before any of them is read.
export const SVG = text(
  '<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="64" height="48">' +
    '<image xlink:href="http://127.0.0.1:9/steal.png" width="64" height="48"/><circle cx="32" cy="24" r="10" fill="red"/></svg>\n',
);
export const HTML = text('<!doctype html><html><body><img src="x.png"></body></html>\n');
