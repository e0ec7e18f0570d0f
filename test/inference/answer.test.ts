import { describe, expect, it } from 'vitest';
import { parseAnswer } from '../../src/inference/answer.js';
import type { Mask } from '../../src/inference/postprocess.js';

const TAGS = { pOpen: '<p>', pClose: '</p>', seg: '[SEG]', other: ['<|im_end|>', '<|im_start|>', '<region>', '<mark>', '<s>', '</s>'] };
const mask = (area: number): Mask => ({ width: 1, height: 1, data: new Uint8Array(1), bbox: [0, 0, 0, 0], area, score: 0 });

describe('parseAnswer', () => {
  it('pairs GCG phrases with masks in order and gives their spans in the clean text', () => {
    const raw = '<p> A man </p> [SEG] is riding <p> a brown horse </p> [SEG] on <p> the beach </p> [SEG].';
    const { text, segments } = parseAnswer(raw, [mask(1), mask(2), mask(3)], TAGS);
    expect(text).toBe('A man is riding a brown horse on the beach.');
    expect(segments.map((s) => [s.phrase, s.mask.area])).toEqual([['A man', 1], ['a brown horse', 2], ['the beach', 3]]);
    for (const s of segments) expect(text.slice(...s.span!)).toBe(s.phrase);
  });

  it('gives a [SEG] without a phrase an empty phrase and no span', () => {
    const { text, segments } = parseAnswer('Sure, it is [SEG].', [mask(5)], TAGS);
    expect(text).toBe('Sure, it is.');
    expect(segments).toEqual([{ phrase: '', span: null, mask: mask(5) }]);
  });

  it('drops a final [SEG] that has no mask (it was never fed back)', () => {
    const { segments } = parseAnswer('<p> A </p> [SEG] and <p> B </p> [SEG]', [mask(1)], TAGS);
    expect(segments.map((s) => s.phrase)).toEqual(['A']);
  });

  it('pairs a [SEG] with the last phrase before it, leaving earlier phrases unmasked', () => {
    const { text, segments } = parseAnswer('<p> red </p> and <p> blue </p> [SEG]', [mask(1)], TAGS);
    expect(text).toBe('red and blue');
    expect(segments[0]!.phrase).toBe('blue');
    expect(segments[0]!.span).toEqual([8, 12]);
  });

  it('removes other special tokens and keeps the words of an unclosed phrase', () => {
    const { text, segments } = parseAnswer('<p> Region1 </p> [SEG] is a <p> star<|im_end|>', [mask(1)], TAGS);
    expect(text).toBe('Region1 is a star');
    expect(segments).toHaveLength(1);
  });
});
