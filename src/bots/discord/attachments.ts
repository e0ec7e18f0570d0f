// Attachments: pick the image, check its caps from the metadata Discord sends (size, width, height) before
// downloading anything, then fetch it from an allowed CDN host. Bytes are kept, never the URL: URLs expire.
import type { Attachment } from 'discord.js';
import type { Config } from '../../config.js';
import { downloadFile } from '../../conversation/download.js';
import { omgError } from '../../errors.js';

export interface ImageInput { bytes: Uint8Array; name: string; mime: string }

/** The first image among the attachments; undefined when there are none; OMG_ERR_IMAGE_TYPE when none is an image. */
export function pickImage(attachments: Iterable<Attachment>): Attachment | undefined {
  const all = [...attachments];
  if (all.length === 0) return undefined;
  const image = all.find((a) => a.contentType?.startsWith('image/'));
  if (!image) throw omgError('OMG_ERR_IMAGE_TYPE', { mime: all[0]!.contentType ?? all[0]!.name });
  return image;
}

/** Byte and pixel caps, from the attachment's own fields. */
export function checkAttachment(attachment: Attachment, config: Config): void {
  if (attachment.size > config.MAX_IMAGE_BYTES) {
    throw omgError('OMG_ERR_IMAGE_TOO_LARGE', { bytes: attachment.size, limit: config.MAX_IMAGE_BYTES });
  }
  const { width, height } = attachment;
  if (width && height && width * height > config.MAX_IMAGE_PIXELS) {
    throw omgError('OMG_ERR_IMAGE_TOO_MANY_PIXELS', { width, height, limit: config.MAX_IMAGE_PIXELS });
  }
}

/** Checks, then downloads the attachment from one of DISCORD_CDN_HOSTS. */
export async function fetchImage(attachment: Attachment, config: Config): Promise<ImageInput> {
  checkAttachment(attachment, config);
  const { bytes, contentType } = await downloadFile(attachment.url, {
    allowedHosts: config.DISCORD_CDN_HOSTS,
    maxBytes: config.MAX_IMAGE_BYTES,
  });
  return { bytes, name: attachment.name, mime: attachment.contentType ?? contentType };
}
