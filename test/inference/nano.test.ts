// End to end through the TypeScript core with the trained nano bundle, on held-out generated scenes
// (fixtures/make_nano_scenes.py): referring segmentation, grounded captions, count/colour/shape questions, region
// captions from point, box and mask prompts, and segment everything.
// Where the committed nano model does not reach the model-tooling issue's bars yet (BARS, printed beside each
// measure), the assertions are floors a little under what it measures today, so a regression in the TypeScript path
// or a worse bundle fails here. Raise them with every better bundle; the aim is the bars.
const BARS = { referMiou: 0.85, gcgMiou: 0.8, count: 0.95, countMany: 0.95, colourShape: 0.95, regionCaptions: 0.9, everythingRecall: 0.9 };
const FLOORS = { referMiou: 0.88, gcgMiou: 0.88, count: 0.95, countMany: 0.78, colourShape: 0.97, regionCaptions: 0.9, everythingRecall: 0.89 };
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OmgLlava } from '../../src/inference/model.js';
import type { BinaryMask, VisualPrompt } from '../../src/inference/prompts.js';
import { decodeRgb } from '../../src/inference/preprocess.js';

const NANO = fileURLToPath(new URL('../../models/omg-llava-nano/', import.meta.url));
const SCENES = fileURLToPath(new URL('./fixtures/nano-scenes/', import.meta.url));
// Question forms of tools/model/scenes/texts.py: the referring eval form and the first upstream GCG question.
const REFER_QUESTION = 'Please segment the {x} in this image.';
const GCG_QUESTION = 'Could you please give me a detailed description of the image? Please respond with interleaved '
  + 'segmentation masks for the corresponding parts of the answer.';

interface SceneObject { name: string; referring: string | null; mask: string }
interface Region {
  object: number; point: [number, number]; box: [number, number, number, number];
  questions: Record<'point' | 'box' | 'mask', string>; answer: string;
}
interface Scene {
  image: string; width: number; height: number; objects: SceneObject[];
  questions: { task: 'count' | 'count_many' | 'colour' | 'shape'; question: string; answer: string }[]; region: Region;
}
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

  it('segments unambiguous referring expressions (mIoU above the floor; bar 0.85)', async () => {
    const scores: number[] = [];
    for (const scene of scenes) {
      const image = read(scene.image);
      for (const obj of scene.objects.filter((o) => o.referring !== null)) {
        const chat = await model.conversation(image);
        const answer = await chat.ask(REFER_QUESTION.replace('{x}', obj.referring!), { generation: { maxNewTokens: 24 } });
        const mask = answer.segments[0]?.mask;
        scores.push(mask ? iou(mask, await groundTruth(obj.mask)) : 0);
        chat.close();
      }
    }
    const mean = scores.reduce((s, v) => s + v, 0) / scores.length;
    console.info(`nano referring mIoU ${mean.toFixed(3)} over ${scores.length} targets (bar ${BARS.referMiou})`);
    expect(scores.length).toBeGreaterThan(15);
    expect(mean).toBeGreaterThanOrEqual(FLOORS.referMiou);
  }, 300_000);

  it('grounds caption phrases with masks (phrase-mask mIoU above the floor; bar: every shape once, 0.80)', async () => {
    const scores: number[] = [];
    let namedOnce = 0;
    for (const scene of scenes) {
      const chat = await model.conversation(read(scene.image));
      const answer = await chat.ask(GCG_QUESTION, { generation: { maxNewTokens: 96 } });
      chat.close();
      const phrases = [...answer.raw.matchAll(/<p>(.*?)<\/p>/g)].map((m) => m[1]!.trim().toLowerCase());
      if (JSON.stringify(phrases.sort()) === JSON.stringify(scene.objects.map((o) => o.name).sort())) namedOnce++;
      for (const segment of answer.segments) {
        const same = scene.objects.filter((o) => o.name === segment.phrase.toLowerCase());
        const best = await Promise.all(same.map(async (o) => iou(segment.mask, await groundTruth(o.mask))));
        scores.push(Math.max(0, ...best));
      }
    }
    const mean = scores.reduce((s, v) => s + v, 0) / Math.max(1, scores.length);
    console.info(`nano GCG: ${namedOnce}/${scenes.length} captions name every shape once; phrase-mask mIoU ${mean.toFixed(3)}`
      + ` over ${scores.length} phrases (bar ${BARS.gcgMiou})`);
    expect(scores.length).toBeGreaterThanOrEqual(scenes.length); // at least one grounded phrase per caption on average
    expect(mean).toBeGreaterThanOrEqual(FLOORS.gcgMiou);
  }, 300_000);

  it('answers count, colour and shape questions exactly (accuracy above the floor; bar 0.95)', async () => {
    // count_many: every count of two or more a scene offers, which the one drawn count question rarely asks
    const score = { count: { right: 0, total: 0 }, countMany: { right: 0, total: 0 }, colourShape: { right: 0, total: 0 } };
    const measure = { count: 'count', count_many: 'countMany', colour: 'colourShape', shape: 'colourShape' } as const;
    for (const scene of scenes) {
      for (const { task, question, answer } of scene.questions) {
        const chat = await model.conversation(read(scene.image));
        const got = await chat.ask(question, { generation: { maxNewTokens: 24 } });
        chat.close();
        const s = score[measure[task]];
        s.total++;
        if (got.text.trim() === answer) s.right++;
      }
    }
    for (const [name, { right, total }] of Object.entries(score) as [keyof typeof score, { right: number; total: number }][]) {
      console.info(`nano ${name} questions ${(right / total).toFixed(3)} (${right}/${total}; bar ${BARS[name]})`);
      expect(total).toBeGreaterThan(10);
      expect(right / total).toBeGreaterThanOrEqual(FLOORS[name]);
    }
  }, 300_000);

  it('captions a region marked by a point, a box or a mask (accuracy above the floor; bar 0.9)', async () => {
    let right = 0, total = 0;
    for (const scene of scenes) {
      const { object, point, box, questions, answer } = scene.region;
      const prompts: Record<keyof Region['questions'], VisualPrompt> = {
        point: { kind: 'point', x: point[0], y: point[1] },
        box: { kind: 'box', x1: box[0], y1: box[1], x2: box[2], y2: box[3] },
        mask: { kind: 'mask', mask: await groundTruth(scene.objects[object]!.mask) },
      };
      for (const kind of ['point', 'box', 'mask'] as const) {
        const chat = await model.conversation(read(scene.image));
        const got = await chat.ask(questions[kind], { prompts: [prompts[kind]], generation: { maxNewTokens: 24 } });
        chat.close();
        total++;
        if (got.text.trim() === answer) right++;
      }
    }
    console.info(`nano region captions ${(right / total).toFixed(3)} (${right}/${total}; bar ${BARS.regionCaptions})`);
    expect(right / total).toBeGreaterThanOrEqual(FLOORS.regionCaptions);
  }, 300_000);

  it('finds the objects with segment everything at IoU 0.5 (recall above the floor; bar 0.9)', async () => {
    let found = 0, total = 0;
    for (const scene of scenes) {
      const { regions } = await model.segmentEverything(read(scene.image));
      for (const obj of scene.objects) {
        const gt = await groundTruth(obj.mask);
        total++;
        if (regions.some((r) => iou(r.mask, gt) >= 0.5)) found++;
      }
    }
    console.info(`nano segment-everything recall ${(found / total).toFixed(3)} (${found}/${total}; bar ${BARS.everythingRecall})`);
    expect(found / total).toBeGreaterThanOrEqual(FLOORS.everythingRecall);
  }, 300_000);
});
