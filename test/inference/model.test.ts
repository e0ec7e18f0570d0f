// OmgLlava over the tiny-random bundle: typed errors a user can be shown, caches, and segment everything.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OmgLlava } from '../../src/inference/model.js';

const TINY = fileURLToPath(new URL('../fixtures/tiny-random/', import.meta.url));
const image = new Uint8Array(readFileSync(`${TINY}golden-image.png`)); // 45x30
const short = { generation: { maxNewTokens: 4 } };
let model: OmgLlava;

beforeAll(async () => { model = await OmgLlava.load(TINY); });
afterAll(async () => { await model.dispose(); });

describe('OmgLlava', () => {
  it('rejects bytes that are not an image with OMG_ERR_IMAGE_DECODE', async () => {
    await expect(model.conversation(new TextEncoder().encode('GIF89a but not really'))).rejects.toMatchObject({ code: 'OMG_ERR_IMAGE_DECODE' });
  });

  it('rejects a prompt outside the image and a placeholder mismatch, and the chat stays usable', async () => {
    const chat = await model.conversation(image);
    await expect(chat.ask('What is <mark>?', { ...short, prompts: [{ kind: 'point', x: 50, y: 3 }] }))
      .rejects.toMatchObject({ code: 'OMG_ERR_PROMPT_OUTSIDE_IMAGE', retryable: false });
    await expect(chat.ask('What is <mark> and <region>?', { ...short, prompts: [{ kind: 'point', x: 5, y: 3 }] }))
      .rejects.toMatchObject({ code: 'OMG_ERR_PROMPT_MISMATCH', details: { placeholders: 2, prompts: 1 } });
    const answer = await chat.ask('What is <mark>?', { ...short, prompts: [{ kind: 'point', x: 0.5, y: 0.5, normalized: true }] });
    expect(answer.usage.cachedTokens).toBe(0); // the failed turns left no history behind
    expect(answer.usage.newTokens).toBeGreaterThan(0);
  });

  it('streams the visible answer: the deltas add up to the clean text, with no tags such as <p> or [SEG]', async () => {
    const chat = await model.conversation(image);
    const deltas: string[] = [];
    const answer = await chat.ask('Please segment the red circle in this image.', { onToken: (d) => deltas.push(d) });
    expect(answer.raw).toContain('[SEG]'); // the fixture's steered head answers with a grounded phrase
    expect(deltas.length).toBeGreaterThan(1);
    expect(deltas.join('')).toBe(answer.text);
    expect(deltas.join('')).not.toMatch(/<\/?p>|\[SEG\]|<\|im_end\|>/);
  });

  it('runs the image pass once per image and reuses the KV cache for follow-ups', async () => {
    const before = model.stats();
    const chat = await model.conversation(image);
    const a1 = await chat.ask('Describe the image.', short);
    const a2 = await chat.ask('And the colours?', short);
    const after = model.stats();
    expect(after.imageCache.misses - before.imageCache.misses).toBeLessThanOrEqual(1);
    expect(after.imageCache.hits - before.imageCache.hits).toBeGreaterThanOrEqual(2);
    expect(a2.usage.cachedTokens).toBe(a1.usage.promptTokens + a1.usage.newTokens - 1);
    expect(after.kvCache.bytes).toBeGreaterThan(0);
    for (const stage of ['prompts', 'prefill', 'decode', 'seg', 'postprocess']) expect(a2.timings[stage]).toBeGreaterThanOrEqual(0);
    expect(a2.timings.vision).toBeUndefined(); // the image pass is reported once, with the turn that paid for it
  });

  it('reports the image pass (preprocess, vision, prior) with the first turn on a new image', async () => {
    const fresh = await OmgLlava.load(TINY);
    const answer = await (await fresh.conversation(image)).ask('Describe the image.', short);
    await fresh.dispose();
    for (const stage of ['preprocess', 'vision', 'prior']) expect(answer.timings[stage]).toBeGreaterThan(0);
  });

  it('continues a conversation rebuilt from the same history (a follow-up job) from the cached KV state', async () => {
    const first = await model.conversation(image);
    const prompts = [{ kind: 'box' as const, x1: 20, y1: 5, x2: 40, y2: 25 }];
    const a1 = await first.ask('What is in region1 <region>?', { ...short, prompts });
    const rebuilt = await model.conversation(image, [{ text: 'What is in region1 <region>?', prompts, raw: a1.raw }]);
    const a2 = await rebuilt.ask('And its colour?', short);
    expect(a2.usage.cachedTokens).toBe(a1.usage.promptTokens + a1.usage.newTokens - 1);
    const other = await model.conversation(image, [{ text: 'What is in region1 <region>?', prompts, raw: `${a1.raw} (edited)` }]);
    expect((await other.ask('And its colour?', short)).usage.cachedTokens).toBe(0);
  });

  it('segments everything into numbered, non-overlapping regions ordered by area', async () => {
    const { regions } = await model.segmentEverything(image);
    regions.forEach((r, i) => {
      expect(r.id).toBe(i + 1);
      expect([r.mask.width, r.mask.height]).toEqual([45, 30]);
      if (i > 0) expect(r.mask.area).toBeLessThanOrEqual(regions[i - 1]!.mask.area);
    });
    const covered = new Uint8Array(45 * 30);
    for (const r of regions) r.mask.data.forEach((v, i) => { covered[i]! += v; });
    expect(Math.max(0, ...covered)).toBeLessThanOrEqual(1);
  });

  it('falls back from auto to CPU with one warning when CUDA is unavailable, and refuses cuda with a typed error', async () => {
    const warnings: string[] = [];
    const auto = await OmgLlava.load(TINY, { provider: 'auto', threads: 1, warn: (m) => warnings.push(m) });
    await auto.dispose();
    // onnxruntime-node here ships without its CUDA provider; on a host that has it, auto picks CUDA silently.
    if (auto.provider === 'cpu') expect(warnings).toHaveLength(1);
    else expect(warnings).toHaveLength(0);
    if (auto.provider === 'cpu') await expect(OmgLlava.load(TINY, { provider: 'cuda' })).rejects.toMatchObject({ code: 'OMG_ERR_PROVIDER' });
  });

  it('says what to do when used after dispose', async () => {
    const other = await OmgLlava.load(TINY);
    await other.dispose();
    await expect(other.conversation(image)).rejects.toMatchObject({ details: { reason: expect.stringMatching(/OmgLlava\.load/) } });
  });
});
