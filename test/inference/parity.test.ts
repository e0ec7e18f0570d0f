// Parity with the Python reference (tools/model/omg_llava/pipeline.py) on the tiny-random bundle: every stage of
// the TypeScript core is compared with golden.json (max abs diff <= 1e-4, identical ids and binary masks).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GRAPH_NAMES, readBundle, type Bundle, type GraphName } from '../../src/inference/bundle.js';
import { generate, KvCache, spliceEmbeds } from '../../src/inference/generate.js';
import { OmgLlava } from '../../src/inference/model.js';
import { masksFromLogits } from '../../src/inference/postprocess.js';
import { decodeRgb, preprocess, type Geometry } from '../../src/inference/preprocess.js';
import { encodePrompts, promptFeeds, type VisualPrompt } from '../../src/inference/prompts.js';
import { argmax } from '../../src/inference/sampler.js';
import { decodeSeg } from '../../src/inference/seg.js';
import { GraphSession } from '../../src/inference/session.js';
import { ChatTokenizer } from '../../src/inference/template.js';
import { runImagePass, type ImagePass } from '../../src/inference/vision.js';

const DIR = fileURLToPath(new URL('../fixtures/tiny-random/', import.meta.url));
const TOL = 1e-4;

interface GoldenTensor { dtype: 'float32' | 'int64' | 'uint8'; shape: number[]; b64: string }
interface GoldenPrompt { kind: string; x?: number; y?: number; x1?: number; y1?: number; x2?: number; y2?: number; mask?: string }
const golden = JSON.parse(readFileSync(join(DIR, 'golden.json'), 'utf8')) as {
  tensors: Record<string, GoldenTensor>;
  case: { image: string; max_new_tokens: number; turns: { question: string; prompts: GoldenPrompt[] }[] };
};

function tensor(name: string): Float32Array | BigInt64Array | Uint8Array {
  const t = golden.tensors[name];
  if (!t) throw new Error(`golden.json has no tensor ${name}`);
  const bytes = Buffer.from(t.b64, 'base64');
  const buf = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  return t.dtype === 'float32' ? new Float32Array(buf) : t.dtype === 'int64' ? new BigInt64Array(buf) : new Uint8Array(buf);
}
const floats = (name: string) => tensor(name) as Float32Array;
const ints = (name: string) => Array.from(tensor(name) as BigInt64Array, Number);
const bytes = (name: string) => Array.from(tensor(name) as Uint8Array);

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  return worst;
}

async function goldenPrompts(turn: number): Promise<VisualPrompt[]> {
  return Promise.all(golden.case.turns[turn]!.prompts.map(async (p): Promise<VisualPrompt> => {
    if (p.kind === 'point') return { kind: 'point', x: p.x!, y: p.y! };
    if (p.kind === 'box') return { kind: 'box', x1: p.x1!, y1: p.y1!, x2: p.x2!, y2: p.y2! };
    const img = await decodeRgb(readFileSync(join(DIR, p.mask!)));
    const data = Uint8Array.from({ length: img.width * img.height }, (_, i) => (img.data[i * 3]! > 127 ? 1 : 0));
    return { kind: 'mask', mask: { width: img.width, height: img.height, data } };
  }));
}

let bundle: Bundle;
let sessions: Record<GraphName, GraphSession>;
let tokenizer: ChatTokenizer;
let image: Uint8Array;
let pass: ImagePass;
let geometry: Geometry;

beforeAll(async () => {
  bundle = await readBundle(DIR);
  sessions = {} as Record<GraphName, GraphSession>;
  for (const g of GRAPH_NAMES) sessions[g] = await GraphSession.create(join(DIR, bundle.graphs[g].file), bundle.graphs[g]);
  tokenizer = new ChatTokenizer(bundle.tokenizerJson, bundle.manifest.config);
  image = new Uint8Array(readFileSync(join(DIR, golden.case.image)));
  const pre = preprocess(await decodeRgb(image), bundle.manifest.config);
  geometry = pre.geometry;
  pass = await runImagePass(sessions.vision, sessions.prior, pre.pixelValues, bundle.manifest.config, () => undefined);
});

afterAll(async () => {
  await Promise.all(Object.values(sessions ?? {}).map((s) => s.dispose()));
});

describe('parity with the Python reference (tiny-random)', () => {
  it('preprocesses the image to the same pixel_values', async () => {
    const pre = preprocess(await decodeRgb(image), bundle.manifest.config);
    expect(maxAbsDiff(pre.pixelValues, floats('pixel_values'))).toBeLessThanOrEqual(1e-6);
  });

  it('runs the image pass to the same features, logits and image block', () => {
    const f = pass.features;
    for (const [name, got] of [['mask_features', f.maskFeatures.data], ['mem0', f.mem0.data], ['mem1', f.mem1.data],
      ['mem2', f.mem2.data], ['class_logits', f.classLogits], ['mask_logits', f.maskLogits]] as const) {
      expect(maxAbsDiff(got as Float32Array, floats(name)), name).toBeLessThanOrEqual(TOL);
    }
    const valid = bytes('object_valid').reduce((n, v) => n + v, 0);
    expect(pass.objectCount).toBe(valid);
    expect(maxAbsDiff(pass.block, floats('image_block'))).toBeLessThanOrEqual(TOL);
  });

  it('maps point, box and mask prompts into S_in space (mask centre rule) and embeds them', async () => {
    for (const turn of [0, 1]) {
      const prompts = await goldenPrompts(turn);
      const feeds = promptFeeds(prompts, geometry);
      const k = `turn${turn + 1}`;
      expect(maxAbsDiff(feeds.points.data as Float32Array, floats(`${k}.prompt_points`))).toBeLessThanOrEqual(1e-5);
      expect(maxAbsDiff(feeds.boxes.data as Float32Array, floats(`${k}.prompt_boxes`))).toBeLessThanOrEqual(1e-5);
      expect(Array.from(feeds.regions.data as Float32Array)).toEqual(bytes(`${k}.prompt_regions`));
      expect(Array.from(feeds.kinds.data as BigInt64Array, Number)).toEqual(ints(`${k}.prompt_kinds`));
      const embeds = await encodePrompts(sessions.prompt, pass.features, prompts, geometry);
      expect(maxAbsDiff(embeds, floats(`${k}.prompt_embeds`))).toBeLessThanOrEqual(TOL);
    }
  });

  it('tokenises turn 1 in two chunks with BOS once, and turn 2 as stop + separator + template without BOS', () => {
    const [q1, q2] = golden.case.turns.map((t) => t.question);
    expect(tokenizer.firstTurn(q1!)).toEqual(ints('turn1.ids'));
    const turn1 = ints('turn1.generated');
    expect([turn1[turn1.length - 1]!, ...tokenizer.followUp(q2!)]).toEqual(ints('turn2.ids'));
  });

  it('generates the same ids, [SEG] states and masks in both turns, turn 2 from the KV cache', async () => {
    const config = bundle.manifest.config;
    const prompts = [...await goldenPrompts(0), ...await goldenPrompts(1)];
    const embeds = await encodePrompts(sessions.prompt, pass.features, prompts, geometry);
    const d = config.llm.hidden_size;
    const src = { block: pass.block, prompts: prompts.map((_, i) => embeds.slice(i * d, (i + 1) * d)) };
    let cache = KvCache.empty(sessions.llm, config);
    let firstPrompt = 0;
    for (const k of ['turn1', 'turn2']) {
      const ids = ints(`${k}.ids`);
      const inputsEmbeds = await spliceEmbeds(sessions.embed, ids, firstPrompt, src, config);
      firstPrompt += tokenizer.placeholders(ids);
      expect(maxAbsDiff(inputsEmbeds, floats(`${k}.inputs_embeds`)), `${k} inputs_embeds`).toBeLessThanOrEqual(TOL);
      const out = await generate({ llm: sessions.llm, embed: sessions.embed, tokenizer, config, cache, inputsEmbeds,
        sampler: argmax, maxNewTokens: golden.case.max_new_tokens });
      expect(maxAbsDiff(out.promptLogits, floats(`${k}.prompt_logits`)), `${k} prompt logits`).toBeLessThanOrEqual(TOL);
      expect(out.ids, `${k} greedy ids`).toEqual(ints(`${k}.generated`));
      const hidden = new Float32Array(out.segHidden.flatMap((h) => Array.from(h)));
      expect(maxAbsDiff(hidden, floats(`${k}.seg_hidden`)), `${k} [SEG] hidden`).toBeLessThanOrEqual(TOL);
      const logits = await decodeSeg(sessions.seg, pass.features, out.segHidden, config);
      expect(maxAbsDiff(logits, floats(`${k}.seg_mask_logits`)), `${k} mask logits`).toBeLessThanOrEqual(TOL);
      const masks = masksFromLogits(logits, config.mask_size, geometry);
      expect(masks.flatMap((m) => Array.from(m.data)), `${k} binary masks`).toEqual(bytes(`${k}.masks`));
      cache = out.cache;
    }
  });

  it('gives turn 2 from the KV cache the same logits and ids as recomputing the whole history from scratch', async () => {
    const config = bundle.manifest.config;
    const prompts = [...await goldenPrompts(0), ...await goldenPrompts(1)];
    const embeds = await encodePrompts(sessions.prompt, pass.features, prompts, geometry);
    const d = config.llm.hidden_size;
    const src = { block: pass.block, prompts: prompts.map((_, i) => embeds.slice(i * d, (i + 1) * d)) };
    // turn 2's ids begin with turn 1's unfed stop id, so the history is turn1.ids + turn1.generated[:-1] + turn2.ids.
    const history = [...ints('turn1.ids'), ...ints('turn1.generated').slice(0, -1), ...ints('turn2.ids')];
    const out = await generate({ llm: sessions.llm, embed: sessions.embed, tokenizer, config,
      cache: KvCache.empty(sessions.llm, config), inputsEmbeds: await spliceEmbeds(sessions.embed, history, 0, src, config),
      sampler: argmax, maxNewTokens: golden.case.max_new_tokens });
    expect(maxAbsDiff(out.promptLogits, floats('turn2.prompt_logits'))).toBeLessThanOrEqual(TOL);
    expect(out.ids).toEqual(ints('turn2.generated'));
  });

  it('answers both turns through OmgLlava with the golden masks, and a chat rebuilt from history answers alike', async () => {
    const model = await OmgLlava.load(DIR);
    try {
      const [t1, t2] = golden.case.turns;
      const p1 = await goldenPrompts(0), p2 = await goldenPrompts(1);
      const chat = await model.conversation(image);
      const a1 = await chat.ask(t1!.question, { prompts: p1 });
      const a2 = await chat.ask(t2!.question, { prompts: p2 });
      expect(a2.usage.cachedTokens).toBeGreaterThan(0);
      expect(a1.segments.map((s) => Array.from(s.mask.data)).flat()).toEqual(bytes('turn1.masks'));
      expect(a2.segments.map((s) => Array.from(s.mask.data)).flat()).toEqual(bytes('turn2.masks'));

      const rebuilt = await model.conversation(image, [{ text: t1!.question, prompts: p1, raw: a1.raw }]);
      const fresh = await rebuilt.ask(t2!.question, { prompts: p2 });
      expect(fresh.usage.cachedTokens).toBe(0);
      expect(fresh.raw).toBe(a2.raw);
      expect(fresh.segments.map((s) => Array.from(s.mask.data))).toEqual(a2.segments.map((s) => Array.from(s.mask.data)));
      expect(fresh.text).toBe('Red circle.');
      expect(fresh.segments[0]!.phrase).toBe('Red circle');
    } finally {
      await model.dispose();
    }
  });
});
