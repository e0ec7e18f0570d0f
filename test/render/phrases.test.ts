import { describe, expect, it } from 'vitest';
import { groundedText } from '../../src/render/phrases.js';

const text = 'A man is riding a brown horse on the beach.';
const segments = [
  { n: 1, phrase: 'A man', span: [0, 5] as [number, number], area: 40 },
  { n: 2, phrase: 'a brown horse', span: [16, 29] as [number, number], area: 90 },
  { n: 3, phrase: 'the beach', span: [33, 42] as [number, number], area: 300 },
];

describe('groundedText', () => {
  it('marks each phrase with its colour emoji and number for Discord', () => {
    expect(groundedText(text, segments, 'discord')).toBe(
      '🟧 **A man** (#1) is riding 🟦 **a brown horse** (#2) on 🟩 **the beach** (#3).',
    );
  });

  it('uses mrkdwn bold for Slack and escapes its control characters', () => {
    expect(groundedText('x < y & A man', [{ n: 4, phrase: 'A man', span: [8, 13], area: 1 }], 'slack')).toBe('x &lt; y &amp; 🟨 *A man* (#4)');
  });

  it('wraps phrases in coloured spans for the web and escapes HTML', () => {
    const html = groundedText('<b>dog</b>', [{ n: 5, phrase: 'dog', span: [3, 6], area: 1 }], 'html');
    expect(html).toBe(
      '&lt;b&gt;<span class="omg-seg" data-region="5" style="border-bottom:3px solid #0072B2;background:#0072B233">dog<sup>#5</sup></span>&lt;/b&gt;',
    );
  });

  it('says which phrases found nothing, with no colour, since their masks are empty', () => {
    const cat = [{ n: 2, phrase: 'Red circle', span: [0, 10] as [number, number], area: 0 }];
    expect(groundedText('Red circle.', cat, 'discord')).toBe('**Red circle** (#2: not found).');
    expect(groundedText('Red circle.', cat, 'slack')).toBe('*Red circle* (#2: not found).');
    expect(groundedText('Red circle.', cat, 'html')).toBe('<span class="omg-seg" data-region="2">Red circle<sup>#2: not found</sup></span>.');
  });

  it('escapes Discord markdown typed by the model', () => {
    expect(groundedText('**bold** _x_', [], 'discord')).toBe('\\*\\*bold\\*\\* \\_x\\_');
  });

  it('lists masks without a usable span after the text', () => {
    const out = groundedText('Sure, it is.', [
      { n: 1, phrase: 'the dog', span: null, area: 1 },
      { n: 2, phrase: 'bad', span: [5, 99], area: 1 },
    ], 'discord');
    expect(out).toBe('Sure, it is.\n🟧 **the dog** (#1)\n🟦 **bad** (#2)');
    expect(groundedText('', [{ n: 1, phrase: '', span: null, area: 1 }], 'slack')).toBe('🟧 *region 1* (#1)');
  });
});
