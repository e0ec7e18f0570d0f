// "All masks separately": each region of one answer as its own cut-out image (transparent outside the mask),
// rendered by src/render from the conversation's stored image and masks.
import type { AttachmentPayload } from 'discord.js';
import type { TurnService } from '../../conversation/service.js';
import { omgError } from '../../errors.js';
import { cutoutPng } from '../../render/cutout.js';
import { colourFor } from '../../render/palette.js';
import { decode } from '../../render/rle.js';

const MAX_FILES = 10; // attachments per Discord message

export interface MaskFiles { content: string; files: AttachmentPayload[] }

export async function maskFiles(service: TurnService, channel: string, thread: string, turnId: string): Promise<MaskFiles> {
  const conversation = await service.conversation('discord', channel, thread);
  if (!conversation) throw omgError('OMG_ERR_NO_IMAGE');
  const image = await service.blob(conversation.image.hash);
  if (!image) throw omgError('OMG_ERR_IMAGE_EXPIRED');
  const regions = conversation.regions.filter((r) => r.turnId === turnId);
  const files: AttachmentPayload[] = [];
  const lines: string[] = [];
  for (const region of regions.slice(0, MAX_FILES)) {
    const png = await cutoutPng(image, decode(region.rle));
    if (!png) continue; // an empty mask has nothing to cut out
    const name = region.label ?? region.phrase;
    files.push({ attachment: Buffer.from(png), name: `mask-${region.n}.png`, description: `#${region.n} ${name}` });
    lines.push(`${colourFor(region.n).emoji} #${region.n} ${name}`);
  }
  if (regions.length > MAX_FILES) lines.push(`(the first ${MAX_FILES} of ${regions.length} masks)`);
  return { content: lines.length > 0 ? lines.join('\n') : 'This answer has no masks.', files };
}
