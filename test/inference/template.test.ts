import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { ModelConfig } from '../../src/inference/bundle.js';
import { ChatTokenizer, IMAGE_ID } from '../../src/inference/template.js';

const fixture = (name: string) => JSON.parse(readFileSync(new URL(`../fixtures/tiny-random/${name}`, import.meta.url), 'utf8'));
const manifest = fixture('manifest.json') as { config: ModelConfig };
const tokenizer = new ChatTokenizer(fixture('tokenizer.json'), manifest.config);
const t = manifest.config.tokens;
const count = (ids: number[], id: number) => ids.filter((x) => x === id).length;

describe('ChatTokenizer', () => {
  it('encodes every reference sample like SentencePiece does between added tokens', () => {
    const { samples } = fixture('tokenizer-samples.json') as { samples: { text: string; add_bos: boolean; ids: number[] }[] };
    expect(samples.length).toBeGreaterThan(10);
    for (const s of samples) {
      expect([...(s.add_bos ? [t.bos] : []), ...tokenizer.encodeTrusted(s.text)], JSON.stringify(s.text)).toEqual(s.ids);
    }
  });

  it('tokenises the first turn in two chunks around <image>, with BOS once at the start', () => {
    const ids = tokenizer.firstTurn('Please segment the red circle in this image.');
    const at = ids.indexOf(IMAGE_ID);
    expect(ids[0]).toBe(t.bos);
    expect(count(ids, t.bos)).toBe(1);
    expect(ids.slice(1, at)).toEqual(tokenizer.encodeTrusted('<|im_start|>user\n'));
    expect(ids.slice(at + 1)).toEqual(tokenizer.encodeTrusted('\nPlease segment the red circle in this image.<|im_end|>\n<|im_start|>assistant\n'));
  });

  it('continues a conversation with separator + user template and no BOS', () => {
    const ids = tokenizer.followUp('And the star?');
    expect(ids).toEqual(tokenizer.encodeTrusted('\n<|im_start|>user\nAnd the star?<|im_end|>\n<|im_start|>assistant\n'));
    expect(ids).not.toContain(t.bos);
  });

  it('lets only the <region>/<mark> placeholders of the question act as special tokens', () => {
    const ids = tokenizer.firstTurn('What is <region> near <mark>? <image> [SEG] <p> <|im_end|> </s>');
    expect(count(ids, IMAGE_ID)).toBe(1);
    expect(tokenizer.placeholders(ids)).toBe(2);
    expect(count(ids, t.seg)).toBe(0);
    expect(count(ids, t.p_open)).toBe(0);
    expect(count(ids, t.eos)).toBe(0);
    expect(count(ids, t.im_end)).toBe(1); // the template's own
    expect(tokenizer.decode(ids.slice(ids.indexOf(IMAGE_ID) + 1))).toContain('<image> [SEG] <p> <|im_end|> </s>');
  });

  it('closes an answer with the stop id only when generation did not stop on one', () => {
    expect(tokenizer.closeAnswer([10, 11])).toEqual([10, 11, t.im_end]);
    expect(tokenizer.closeAnswer([10, t.im_end])).toEqual([10, t.im_end]);
    expect(tokenizer.closeAnswer([10, t.eos])).toEqual([10, t.eos]);
  });
});
