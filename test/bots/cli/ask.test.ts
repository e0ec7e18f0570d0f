import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import sharp from 'sharp';
import { readInputs, runAsk, type AskIo } from '../../../src/bots/cli/ask.js';
import type { AskArgs } from '../../../src/bots/cli/args.js';
import { exitCodeFor, exitCodes } from '../../../src/bots/cli/exit-codes.js';
import type { TurnService } from '../../../src/conversation/service.js';
import { colourFor } from '../../../src/render/palette.js';
import { encode } from '../../../src/render/rle.js';

// A TurnService stand-in: two segments whose masks are stored as conversation regions #3 and #4 (numbers that do
// not start at 1, so the files must follow the reply's order, not the region numbers), and a WebP overlay.
const W = 6;
const H = 4;
const maskA = Uint8Array.from({ length: W * H }, (_, i) => (i % W < 2 ? 1 : 0));
const maskB = Uint8Array.from({ length: W * H }, (_, i) => (i >= 3 * W ? 1 : 0));

class FakeService {
  submits: Parameters<TurnService['submit']>[0][] = [];
  overlay: Uint8Array = new Uint8Array();

  async submit(input: Parameters<TurnService['submit']>[0]) {
    this.submits.push(input);
    input.onProgress?.({ type: 'queued', position: 1 });
    input.onProgress?.({ type: 'started' });
    input.onProgress?.({ type: 'text', delta: 'Left and bottom.' });
    const seg = (n: number, phrase: string) => ({ n, phrase, span: null, colour: colourFor(n), bbox: [0, 0, 2, 4] as [number, number, number, number], area: 8, score: 0.75 });
    return {
      conversationId: 'c', turnId: 't', jobId: 't', text: 'Left and bottom.', segments: [seg(3, 'left'), seg(4, 'bottom')],
      overlay: { bytes: this.overlay, mime: 'image/webp' as const }, timings: { total: 5 },
    };
  }
  async conversation() {
    return { regions: [{ n: 4, rle: encode({ width: W, height: H, data: maskB }) }, { n: 3, rle: encode({ width: W, height: H, data: maskA }) }] };
  }
}

let dir: string;
let out: string;
let err: string;
const io: AskIo = { stdout: (t) => void (out += t), stderr: (t) => void (err += t), streamText: false };
const limits = { maxBytes: 1_000_000, maxPixels: 1_000_000 };

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'omg-cli-'));
  out = '';
  err = '';
});
afterEach(() => rm(dir, { recursive: true, force: true }));

async function writePng(name: string, data?: Uint8Array): Promise<string> {
  const path = join(dir, name);
  const pixels = data ? Buffer.from(data.map((v) => v * 255)) : Buffer.alloc(W * H, 128);
  await writeFile(path, await sharp(pixels, { raw: { width: W, height: H, channels: 1 } }).png().toBuffer());
  return path;
}

const argsFor = (image: string, extra: Partial<AskArgs> = {}): AskArgs => ({ command: 'ask', image, question: 'Segment it', prompts: [], json: false, ...extra });

describe('runAsk', () => {
  it('prints the JSON shape, writes binary masks in reply order and converts the overlay to PNG', async () => {
    const service = new FakeService();
    service.overlay = new Uint8Array(await sharp({ create: { width: W, height: H, channels: 3, background: '#336699' } }).webp().toBuffer());
    const image = await writePng('scene.png');
    const args = argsFor(image, { json: true, masksDir: join(dir, 'masks'), out: join(dir, 'overlay.png') });
    await runAsk(args, await readInputs(args, limits), service as unknown as TurnService, io);

    expect(JSON.parse(out)).toEqual({
      text: 'Left and bottom.',
      segments: [
        { phrase: 'left', bbox: [0, 0, 2, 4], area: 8, score: 0.75 },
        { phrase: 'bottom', bbox: [0, 0, 2, 4], area: 8, score: 0.75 },
      ],
      timings: { total: 5 },
    });
    expect(service.submits[0]).toMatchObject({ platform: 'cli', text: 'Segment it', prompts: [] });
    expect(await readdir(join(dir, 'masks'))).toEqual(['mask-1.png', 'mask-2.png']);
    for (const [file, truth] of [['mask-1.png', maskA], ['mask-2.png', maskB]] as const) {
      const { data, info } = await sharp(join(dir, 'masks', file)).extractChannel(0).raw().toBuffer({ resolveWithObject: true });
      expect([info.width, info.height]).toEqual([W, H]);
      expect(Array.from(data)).toEqual(Array.from(truth, (v) => v * 255));
    }
    expect((await sharp(await readFile(join(dir, 'overlay.png'))).metadata()).format).toBe('png');
    expect(err).toMatch(/queued \(position 1\)\nanswering\.\.\.\n/);
  });

  it('prints text and a mask summary without --json, and passes prompts (a mask file as a binary mask) in order', async () => {
    const service = new FakeService();
    const image = await writePng('scene.png');
    const maskFile = await writePng('prompt.png', maskA);
    const args = argsFor(image, { prompts: [{ kind: 'point', x: 1, y: 2, normalized: false }, { kind: 'mask', file: maskFile }] });
    await runAsk(args, await readInputs(args, limits), service as unknown as TurnService, io);
    expect(out).toBe('Left and bottom.\n  mask 1: left, bbox 0,0,2,4, 8 px, score 0.750\n  mask 2: bottom, bbox 0,0,2,4, 8 px, score 0.750\n');
    expect(service.submits[0]!.prompts).toEqual([
      { kind: 'point', x: 1, y: 2, normalized: false },
      { kind: 'mask', mask: { width: W, height: H, data: maskA } },
    ]);
  });

  it('refuses missing and non-image inputs before any model work, as bad input', async () => {
    const missing = readInputs(argsFor(join(dir, 'nope.png')), limits);
    await expect(missing).rejects.toMatchObject({ code: 'OMG_ERR_BAD_REQUEST', userMessage: expect.stringMatching(/Cannot read IMAGE ".*nope\.png": no such file/) });
    const text = join(dir, 'notes.txt');
    await writeFile(text, 'not an image');
    await expect(readInputs(argsFor(text), limits)).rejects.toMatchObject({ code: 'OMG_ERR_IMAGE_TYPE' });
    const badMask = argsFor(await writePng('scene.png'), { prompts: [{ kind: 'mask', file: text }] });
    await expect(readInputs(badMask, limits)).rejects.toMatchObject({ code: 'OMG_ERR_BAD_REQUEST' });
  });
});

describe('exit codes', () => {
  it('separates bad input, model problems and internal errors', () => {
    expect(exitCodeFor('OMG_ERR_IMAGE_TYPE')).toBe(exitCodes.badInput);
    expect(exitCodeFor('OMG_ERR_PROMPT_OUTSIDE_IMAGE')).toBe(exitCodes.badInput);
    expect(exitCodeFor('OMG_ERR_BUNDLE_INVALID')).toBe(exitCodes.model);
    expect(exitCodeFor('OMG_ERR_INTERNAL')).toBe(exitCodes.internal);
  });
});
