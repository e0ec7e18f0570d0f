import { describe, expect, it } from 'vitest';
import { answerParts } from '../../../src/bots/discord/turn.js';
import type { TurnReply } from '../../../src/conversation/service.js';
import { colourFor } from '../../../src/render/palette.js';

describe('answerParts', () => {
  it('splits a long grounded answer into messages under 2,000 characters without breaking a marker', () => {
    const sentence = 'Next to the fence there is a small brown dog with a red collar. ';
    const text = sentence.repeat(40);
    const phrase = 'a small brown dog';
    const segments = Array.from({ length: 40 }, (_, i) => {
      const at = i * sentence.length + sentence.indexOf(phrase);
      return { n: i + 1, phrase, span: [at, at + phrase.length] as [number, number], colour: colourFor(i + 1),
        bbox: [0, 0, 1, 1] as [number, number, number, number], area: 1, score: 1 };
    });
    const reply: TurnReply = { conversationId: 'c', turnId: 't', jobId: 't', text, segments, overlay: null, timings: {} };
    const parts = answerParts(reply);
    expect(parts.length).toBeGreaterThan(1);
    for (const part of parts) {
      expect(part.length).toBeLessThanOrEqual(2000);
      expect((part.match(/\*\*/g) ?? []).length % 2).toBe(0);
    }
    expect(parts.join('')).toContain('🔵 **a small brown dog** (#40)');
  });

  it('says so when there is no text at all', () => {
    expect(answerParts({ conversationId: 'c', turnId: 't', jobId: 't', text: '', segments: [], overlay: null, timings: {} })).toEqual(['(no answer text)']);
  });
});
