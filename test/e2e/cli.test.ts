// `omg-llava-bot ask` on a generated scene with the embedded nano bundle (no --model, from another directory):
// the masks it writes must match the red circle.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import sharp from 'sharp';
import { circleTruth, iou, maskFromPng, scene, scenePng } from './scene.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const bin = join(root, 'bin/omg-llava-bot.js');
const nano = join(root, 'models/omg-llava-nano/manifest.json');

describe.skipIf(!existsSync(nano))('omg-llava-bot ask with the nano bundle', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'omg-cli-e2e-'));
    await writeFile(join(dir, 'scene.png'), await scenePng());
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('segments the red circle: --json output, binary masks at the image size, PNG overlay', async () => {
    const run = spawnSync(
      process.execPath,
      [bin, 'ask', 'scene.png', 'Please segment the red circle in this image.', '--json', '--masks-dir', 'masks', '--out', 'overlay.png'],
      { cwd: dir, encoding: 'utf8', env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' }, timeout: 170_000 },
    );
    expect(run.status, run.stderr).toBe(0);
    const output = JSON.parse(run.stdout) as { text: string; segments: { phrase: string; bbox: number[]; area: number; score: number }[]; timings: Record<string, number> };
    expect(output.text.length).toBeGreaterThan(0);
    expect(output.segments.length).toBeGreaterThan(0);
    expect(Object.keys(output.segments[0]!).sort()).toEqual(['area', 'bbox', 'phrase', 'score']);
    expect(output.timings.decode).toBeGreaterThan(0);

    const files = output.segments.map((_, i) => `mask-${i + 1}.png`);
    expect((await readdir(join(dir, 'masks'))).sort()).toEqual([...files].sort());
    const truth = circleTruth();
    let best = 0;
    for (const [i, file] of files.entries()) {
      const mask = await maskFromPng(await readFile(join(dir, 'masks', file)));
      best = Math.max(best, iou(mask, truth));
      // The reported area is the area of the written mask.
      expect(mask.reduce((a, b) => a + b, 0)).toBe(output.segments[i]!.area);
    }
    expect(best).toBeGreaterThanOrEqual(0.8);

    const overlay = await sharp(join(dir, 'overlay.png')).metadata();
    expect([overlay.format, overlay.width, overlay.height]).toEqual(['png', scene.width, scene.height]);
  }, 180_000);
});
