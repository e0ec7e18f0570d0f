import { describe, expect, it } from 'vitest';
import { answerBlocks } from '../../../src/bots/slack/blocks.js';
import type { TurnReply } from '../../../src/conversation/service.js';
import { colourFor } from '../../../src/render/palette.js';

function reply(text: string, phrases: [string, number, area?: number][]): TurnReply {
  return {
    conversationId: 'slack:C:1', turnId: 't', jobId: 't', text, overlay: null, timings: {},
    segments: phrases.map(([phrase, at, area = 1], i) => ({ n: i + 1, phrase, span: [at, at + phrase.length] as [number, number],
      colour: colourFor(i + 1), bbox: [0, 0, 1, 1] as [number, number, number, number], area, score: 1 })),
  };
}

describe('answerBlocks', () => {
  it('marks phrases in mrkdwn and adds a legend line', () => {
    const { text, blocks } = answerBlocks(reply('A dog & a cat.', [['A dog', 0], ['a cat', 8]]));
    expect(text).toBe('A dog & a cat.');
    expect(blocks[0]).toEqual({ type: 'section', text: { type: 'mrkdwn', text: '🟧 *A dog* (#1) &amp; 🟦 *a cat* (#2).' } });
    expect(blocks[1]).toEqual({ type: 'context', elements: [{ type: 'mrkdwn', text: '🟧 #1 A dog   🟦 #2 a cat' }] });
  });

  it('says which phrases found nothing, without a colour', () => {
    const { blocks } = answerBlocks(reply('A dog and a cat.', [['A dog', 0], ['a cat', 10, 0]]));
    expect(blocks[0]).toEqual({ type: 'section', text: { type: 'mrkdwn', text: '🟧 *A dog* (#1) and *a cat* (#2: not found).' } });
    expect(blocks[1]).toEqual({ type: 'context', elements: [{ type: 'mrkdwn', text: '🟧 #1 A dog   #2 a cat (not found)' }] });
  });

  it('splits a long answer into sections Slack accepts', () => {
    const long = 'word '.repeat(1500).trim();
    const { blocks } = answerBlocks(reply(long, []));
    const sections = blocks.filter((b) => b.type === 'section') as { text: { text: string } }[];
    expect(sections.length).toBe(3);
    expect(sections.every((s) => s.text.text.length <= 3000)).toBe(true);
    expect(sections.map((s) => s.text.text).join('')).toBe(long);
  });
});
