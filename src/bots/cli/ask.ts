// `omg-llava-bot ask`: one turn through the same TurnService the bots use, then the answer on stdout and the
// requested files (overlay, binary masks) on disk. Progress goes to stderr so stdout stays clean for --json.
import { randomUUID } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { omgError } from '../../errors.js';
import { inspectImage, type ImageLimits } from '../../conversation/image.js';
import type { TurnReply, TurnService, UserPrompt } from '../../conversation/service.js';
import type { ProgressEvent } from '../../queue/job.js';
import { maskPng } from '../../render/cutout.js';
import { decode, type BinaryMask } from '../../render/rle.js';
import type { AskArgs, CliPrompt } from './args.js';

export const PLATFORM = 'cli';
const CHANNEL = 'local';

export interface AskIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  /** Stream the answer's text to stderr as it is generated (a person is watching). */
  streamText: boolean;
}

export interface CliOutput {
  text: string;
  segments: { phrase: string; bbox: [number, number, number, number]; area: number; score: number }[];
  timings: Record<string, number>;
}

export interface AskInputs {
  image: Uint8Array;
  prompts: UserPrompt[];
}

/** The image and mask files, read and checked before the model loads so that a wrong file fails at once. */
export async function readInputs(args: AskArgs, limits: ImageLimits): Promise<AskInputs> {
  const image = await readInput(args.image, 'IMAGE');
  await inspectImage(image, limits);
  return { image, prompts: await Promise.all(args.prompts.map(toUserPrompt)) };
}

export async function runAsk(args: AskArgs, inputs: AskInputs, service: TurnService, io: AskIo, signal?: AbortSignal): Promise<void> {
  const { image, prompts } = inputs;
  const thread = randomUUID();
  let streamed = false;
  const onProgress = (ev: ProgressEvent) => {
    if (ev.type === 'queued') io.stderr(`queued (position ${ev.position})\n`);
    else if (ev.type === 'started') io.stderr('answering...\n');
    else if (ev.type === 'text' && io.streamText) {
      io.stderr(ev.delta);
      streamed = true;
    }
  };
  const reply = await service.submit({
    platform: PLATFORM, channel: CHANNEL, thread, eventId: randomUUID(), userId: 'cli',
    text: args.question, image: { bytes: image, name: args.image }, prompts, onProgress, ...(signal ? { signal } : {}),
  });
  if (streamed) io.stderr('\n');

  if (args.out) await writeOverlay(reply, args.out, io);
  if (args.masksDir) await writeMasks(reply, await masksOf(service, thread, reply), args.masksDir, io);

  const output: CliOutput = {
    text: reply.text,
    segments: reply.segments.map((s) => ({ phrase: s.phrase, bbox: s.bbox, area: s.area, score: s.score })),
    timings: reply.timings,
  };
  io.stdout(args.json ? `${JSON.stringify(output, null, 2)}\n` : humanReadable(reply));
}

async function readInput(path: string, what: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await readFile(path));
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message;
    throw omgError('OMG_ERR_BAD_REQUEST', { correction: `Cannot read ${what} "${path}": ${reason}.` });
  }
}

async function toUserPrompt(p: CliPrompt): Promise<UserPrompt> {
  if (p.kind !== 'mask') return p;
  return { kind: 'mask', mask: await readMask(p.file) };
}

/** A mask file: any image; pixels brighter than mid-grey (in the first channel) are the region. */
async function readMask(path: string): Promise<BinaryMask> {
  const bytes = await readInput(path, '--mask file');
  try {
    const { data, info } = await sharp(bytes).extractChannel(0).raw().toBuffer({ resolveWithObject: true });
    return { width: info.width, height: info.height, data: Uint8Array.from(data, (v) => (v > 127 ? 1 : 0)) };
  } catch (err) {
    throw omgError('OMG_ERR_BAD_REQUEST', { correction: `The --mask file "${path}" is not a readable image.` }, err);
  }
}

async function writeOverlay(reply: TurnReply, path: string, io: AskIo): Promise<void> {
  if (!reply.overlay) {
    io.stderr(`no mask in this answer covers any pixel, so no overlay was written to ${path}\n`);
    return;
  }
  // The service may pick WebP to stay under upload limits; the file asked for here is a PNG.
  const png = reply.overlay.mime === 'image/png' ? reply.overlay.bytes : await sharp(reply.overlay.bytes).png().toBuffer();
  await writeFile(path, png);
  io.stderr(`overlay written to ${path}\n`);
}

/** The reply's masks at the original image size, in segment order, from the conversation's numbered regions. */
async function masksOf(service: TurnService, thread: string, reply: TurnReply): Promise<BinaryMask[]> {
  const conversation = await service.conversation(PLATFORM, CHANNEL, thread);
  return reply.segments.map((s) => {
    const region = conversation?.regions.find((r) => r.n === s.n);
    if (!region) throw omgError('OMG_ERR_UNKNOWN_REGION', { region: s.n });
    return decode(region.rle);
  });
}

async function writeMasks(reply: TurnReply, masks: BinaryMask[], dir: string, io: AskIo): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (const [i, mask] of masks.entries()) await writeFile(join(dir, `mask-${i + 1}.png`), await maskPng(mask));
  io.stderr(`${masks.length} mask${masks.length === 1 ? '' : 's'} written to ${dir}${reply.segments.length ? '' : ' (the answer has no masks)'}\n`);
}

function humanReadable(reply: TurnReply): string {
  const lines = [reply.text];
  for (const [i, s] of reply.segments.entries()) {
    const found = s.area === 0 ? 'not found in the image' : `bbox ${s.bbox.join(',')}, ${s.area} px, score ${s.score.toFixed(3)}`;
    lines.push(`  mask ${i + 1}: ${s.phrase || '(no phrase)'}, ${found}`);
  }
  return `${lines.join('\n')}\n`;
}
