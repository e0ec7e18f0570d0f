// End to end through the TypeScript core with the trained nano bundle, on held-out generated scenes
// (fixtures/make_nano_scenes.py): referring segmentation and segment everything against the quality bars.
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OmgLlava } from '../../src/inference/model.js';
import type { BinaryMask } from '../../src/inference/prompts.js';
import { decodeRgb } from '../../src/inference/preprocess.js';

const NANO = fileURLToPath(new URL('../../models/omg-llava-nano/', import.meta.url));
const SCENES = fileURLToPath(new URL('./fixtures/nano-scenes/', import.meta.url));
const REFER_QUESTION = 'Please segment the {x} in this image.'; // the eval form of scenes/texts.py

interface SceneObject { name: string; referring: string | null; mask: string }
interface Scene { image: string; width: number; height: number; objects: SceneObject[] }
const { scenes } = JSON.parse(readFileSync(`${SCENES}scenes.json`, 'utf8')) as { scenes: Scene[] };

const read = (name: string) => new Uint8Array(readFileSync(`${SCENES}${name}`));

async function groundTruth(name: string): Promise<BinaryMask> {
  const img = await decodeRgb(read(name));
  return { width: img.width, height: img.height, data: Uint8Array.from({ length: img.width * img.height }, (_, i) => (img.data[i * 3]! > 127 ? 1 : 0)) };
}

function iou(a: BinaryMask, b: BinaryMask): number {
  let inter = 0, union = 0;
  for (let i = 0; i < a.data.length; i++) {
    inter += a.data[i]! & b.data[i]!;
    union += a.data[i]! | b.data[i]!;
  }
  return union ? inter / union : 0;
}

let model: OmgLlava;

describe.skipIf(!existsSync(`${NANO}manifest.json`))('nano bundle end to end (held-out scenes)', () => {
  beforeAll(async () => { model = await OmgLlava.load(NANO); });
  afterAll(async () => { await model?.dispose(); });

  it('segments unambiguous referring expressions with mIoU >= 0.85', async () => {
    const scores: number[] = [];
    for (const scene of scenes) {
      const image = read(scene.image);
      for (const obj of scene.objects.filter((o) => o.referring !== null)) {
        const chat = await model.conversation(image);
        const answer = await chat.ask(REFER_QUESTION.replace('{x}', obj.referring!));
        const mask = answer.segments[0]?.mask;
        scores.push(mask ? iou(mask, await groundTruth(obj.mask)) : 0);
        chat.close();
      }
    }
    const mean = scores.reduce((s, v) => s + v, 0) / scores.length;
    console.info(`nano referring mIoU ${mean.toFixed(3)} over ${scores.length} targets`);
    expect(scores.length).toBeGreaterThan(15);
    expect(mean).toBeGreaterThanOrEqual(0.85);
  });

  it('finds >= 90% of the objects with segment everything at IoU 0.5', async () => {
    let found = 0, total = 0;
    for (const scene of scenes) {
      const { regions } = await model.segmentEverything(read(scene.image));
      for (const obj of scene.objects) {
        const gt = await groundTruth(obj.mask);
        total++;
        if (regions.some((r) => iou(r.mask, gt) >= 0.5)) found++;
      }
    }
    console.info(`nano segment-everything recall ${(found / total).toFixed(3)} (${found}/${total})`);
    expect(found / total).toBeGreaterThanOrEqual(0.9);
  });
});
