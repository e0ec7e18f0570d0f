// Image intake: decide from the bytes themselves (never the file name or the declared type) whether an upload is an
// image we accept, refuse oversize files and decompression bombs from the header alone, and hand the rest of the
// service bytes that every later stage (inference, render) reads the same way.
import { createHash } from 'node:crypto';
import sharp, { type Metadata } from 'sharp';
import { omgError } from '../errors.js';

export type ImageMime = 'image/png' | 'image/jpeg' | 'image/webp' | 'image/gif' | 'image/tiff';

export interface ImageLimits {
  maxBytes: number;
  maxPixels: number; // width x height
}

export interface ImageInfo {
  mime: ImageMime;
  width: number;
  height: number;
  hash: string; // sha256 hex of the bytes
}

const startsWith = (bytes: Uint8Array, signature: number[], at = 0) => signature.every((b, i) => bytes[at + i] === b);
const ascii = (s: string) => Array.from(s, (c) => c.charCodeAt(0));

/** The image type from the magic bytes, or null. */
export function sniffImage(bytes: Uint8Array): ImageMime | null {
  if (startsWith(bytes, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return 'image/png';
  if (startsWith(bytes, [0xff, 0xd8, 0xff])) return 'image/jpeg';
  if (startsWith(bytes, ascii('RIFF')) && startsWith(bytes, ascii('WEBP'), 8)) return 'image/webp';
  if (startsWith(bytes, ascii('GIF87a')) || startsWith(bytes, ascii('GIF89a'))) return 'image/gif';
  if (startsWith(bytes, [0x49, 0x49, 0x2a, 0x00]) || startsWith(bytes, [0x4d, 0x4d, 0x00, 0x2a])) return 'image/tiff';
  return null;
}

/** A name for what a refused upload looks like, so the message can say "that is a PDF" rather than just "no". */
function describeRefused(bytes: Uint8Array): string | undefined {
  const head = new TextDecoder('utf-8', { fatal: false }).decode(bytes.subarray(0, 512)).trimStart().toLowerCase();
  if (head.startsWith('%pdf')) return 'application/pdf';
  if (head.startsWith('<svg') || (head.startsWith('<?xml') && head.includes('<svg'))) return 'image/svg+xml';
  if (bytes.length > 0 && !bytes.subarray(0, 512).some((b) => b === 0 || (b < 0x20 && b !== 0x09 && b !== 0x0a && b !== 0x0d))) {
    return 'text/plain';
  }
  return undefined;
}

export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

interface Header {
  info: ImageInfo;
  orientation: number; // EXIF orientation, 1 = upright
}

async function readHeader(bytes: Uint8Array, limits: ImageLimits): Promise<Header> {
  const mime = sniffImage(bytes);
  if (!mime) throw omgError('OMG_ERR_IMAGE_TYPE', { mime: describeRefused(bytes) });
  if (bytes.length > limits.maxBytes) throw omgError('OMG_ERR_IMAGE_TOO_LARGE', { bytes: bytes.length, limit: limits.maxBytes });
  let meta: Metadata;
  try {
    meta = await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch (err) {
    throw omgError('OMG_ERR_IMAGE_DECODE', { mime }, err);
  }
  const orientation = meta.orientation ?? 1;
  // EXIF orientations 5-8 turn the picture a quarter: the upright image has width and height swapped.
  const width = orientation >= 5 ? meta.height : meta.width;
  const height = orientation >= 5 ? meta.width : meta.height;
  if (!width || !height) throw omgError('OMG_ERR_IMAGE_DECODE', { mime });
  if (width * height > limits.maxPixels) throw omgError('OMG_ERR_IMAGE_TOO_MANY_PIXELS', { width, height, limit: limits.maxPixels });
  return { info: { mime, width, height, hash: sha256(bytes) }, orientation };
}

/**
 * Type, upright size and hash from the header; nothing is decoded. Throws OMG_ERR_IMAGE_TYPE,
 * OMG_ERR_IMAGE_TOO_LARGE, OMG_ERR_IMAGE_TOO_MANY_PIXELS or OMG_ERR_IMAGE_DECODE (unreadable header).
 */
export async function inspectImage(bytes: Uint8Array, limits: ImageLimits): Promise<ImageInfo> {
  return (await readHeader(bytes, limits)).info;
}

export interface AcceptedImage extends ImageInfo {
  bytes: Uint8Array; // what the service stores and the worker decodes; `mime` and `hash` describe these bytes
}

/**
 * Inspects, then decodes once to prove the file is whole (a truncated upload fails here, not on a worker).
 * PNG, JPEG and WebP without an EXIF rotation are kept as sent. Anything else (GIF and TIFF, of which the first
 * frame counts, or a photo with a rotation tag) becomes a PNG of the upright first frame, so the model, the
 * overlay and the user all see the same pixels at the same size.
 */
export async function acceptImage(bytes: Uint8Array, limits: ImageLimits): Promise<AcceptedImage> {
  const { info, orientation } = await readHeader(bytes, limits);
  const input = sharp(bytes, { limitInputPixels: limits.maxPixels, failOn: 'truncated', pages: 1 });
  try {
    if (orientation === 1 && ['image/png', 'image/jpeg', 'image/webp'].includes(info.mime)) {
      // A thumbnail still reads every byte of the file, without holding the full-size pixels in memory.
      await input.resize(64, 64, { fit: 'inside' }).raw().toBuffer();
      return { ...info, bytes };
    }
    const png = new Uint8Array(await input.autoOrient().png().toBuffer());
    return { mime: 'image/png', width: info.width, height: info.height, hash: sha256(png), bytes: png };
  } catch (err) {
    throw omgError('OMG_ERR_IMAGE_DECODE', { mime: info.mime }, err);
  }
}
