// Slack files: pick the image, check its size and pixels from the event's file object before downloading, then
// fetch `url_private` with the bot token from an allowed host. Without access Slack answers its HTML sign-in page
// (status 200), which is reported as a permission problem rather than passed on as a "bad image".
import type { Config } from '../../config.js';
import { downloadFile } from '../../conversation/download.js';
import { sniffImage } from '../../conversation/image.js';
import { omgError } from '../../errors.js';

/** The fields of a Slack file object this adapter reads. */
export interface SlackFile {
  id: string;
  name?: string;
  mimetype?: string;
  size?: number;
  url_private?: string;
  url_private_download?: string;
  original_w?: number;
  original_h?: number;
}

export interface ImageInput { bytes: Uint8Array; name: string; mime: string }

/** The first image file; undefined when there are no files; OMG_ERR_IMAGE_TYPE when none is an image. */
export function pickImage(files: SlackFile[] | undefined): SlackFile | undefined {
  if (!files || files.length === 0) return undefined;
  const image = files.find((f) => f.mimetype?.startsWith('image/'));
  if (!image) throw omgError('OMG_ERR_IMAGE_TYPE', { mime: files[0]!.mimetype ?? files[0]!.name });
  return image;
}

export async function fetchImage(file: SlackFile, config: Config): Promise<ImageInput> {
  if (file.size !== undefined && file.size > config.MAX_IMAGE_BYTES) {
    throw omgError('OMG_ERR_IMAGE_TOO_LARGE', { bytes: file.size, limit: config.MAX_IMAGE_BYTES });
  }
  const { original_w: width, original_h: height } = file;
  if (width && height && width * height > config.MAX_IMAGE_PIXELS) {
    throw omgError('OMG_ERR_IMAGE_TOO_MANY_PIXELS', { width, height, limit: config.MAX_IMAGE_PIXELS });
  }
  const url = file.url_private_download ?? file.url_private;
  if (!url) throw omgError('OMG_ERR_DOWNLOAD', { reason: 'the file has no url_private' });
  const { bytes, contentType } = await downloadFile(url, {
    allowedHosts: config.SLACK_FILE_HOSTS,
    maxBytes: config.MAX_IMAGE_BYTES,
    headers: { authorization: `Bearer ${config.SLACK_BOT_TOKEN}` },
  });
  if (contentType.startsWith('text/html') || (!sniffImage(bytes) && looksLikeHtml(bytes))) {
    throw omgError('OMG_ERR_DOWNLOAD', { reason: 'Slack answered a sign-in page: the app lacks files:read or cannot see the file' });
  }
  return { bytes, name: file.name ?? file.id, mime: file.mimetype ?? contentType };
}

function looksLikeHtml(bytes: Uint8Array): boolean {
  const head = new TextDecoder().decode(bytes.subarray(0, 64)).trimStart().toLowerCase();
  return head.startsWith('<!doctype html') || head.startsWith('<html');
}
