import { describe, expect, it } from 'vitest';
import { splitMessage } from '../../../src/bots/discord/split.js';

describe('splitMessage', () => {
  it('keeps a short message whole', () => {
    expect(splitMessage('hello')).toEqual(['hello']);
  });

  it('splits past the limit at a line break and joins back to the text', () => {
    const text = `${'a'.repeat(1500)}\n${'b'.repeat(1500)}`;
    const parts = splitMessage(text);
    expect(parts).toHaveLength(2);
    expect(parts[0]).toBe(`${'a'.repeat(1500)}\n`);
    expect(parts.join('')).toBe(text);
    expect(parts.every((p) => p.length <= 2000)).toBe(true);
  });

  it('never cuts inside a bold phrase marker', () => {
    const marker = '🟧 **the big red ball** (#1)';
    const text = `${'x '.repeat(20)}${marker} tail`;
    const limit = 40 + marker.indexOf('red') + 2; // a space inside the marker is within reach
    const parts = splitMessage(text, limit);
    expect(parts.join('')).toBe(text);
    for (const part of parts) expect((part.match(/\*\*/g) ?? []).length % 2).toBe(0);
  });

  it('cuts a text without spaces hard, never between a surrogate pair', () => {
    const text = `${'a'.repeat(9)}🟧${'b'.repeat(10)}`;
    const parts = splitMessage(text, 10);
    expect(parts[0]).toBe('a'.repeat(9));
    expect(parts.join('')).toBe(text);
  });
});
