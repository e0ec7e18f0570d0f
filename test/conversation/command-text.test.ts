import { describe, expect, it } from 'vitest';
import { commandSentence } from '../../src/conversation/command-text.js';

describe('commandSentence', () => {
  it('turns each command into the sentence the intent parser reads', () => {
    expect(commandSentence('ask', 'what is this?')).toBe('what is this?');
    expect(commandSentence('segment', 'the red car')).toBe('segment the red car');
    expect(commandSentence('caption', '')).toBe('caption');
    expect(commandSentence('caption', '', { grounded: true })).toBe('caption with masks');
    expect(commandSentence('caption', 'grounded')).toBe('caption with masks');
    expect(commandSentence('regions', '')).toBe('segment everything');
    expect(commandSentence('describe', '#2')).toBe('describe #2');
    expect(commandSentence('describe', '3')).toBe('describe #3');
    expect(commandSentence('describe', '(120, 80)')).toBe('what is at (120, 80)');
    expect(commandSentence('describe', '0.1,0.2,0.5,0.6')).toBe('describe the box 0.1,0.2,0.5,0.6');
  });

  it('answers a malformed argument with the usage', () => {
    expect(() => commandSentence('describe', 'the dog')).toThrow(/#n .*x,y.*x1,y1,x2,y2/);
    expect(() => commandSentence('segment', ' ')).toThrow(/segment needs a target/i);
    expect(() => commandSentence('describe', '1,2,3')).toThrow(expect.objectContaining({ code: 'OMG_ERR_BAD_REQUEST' }));
  });
});
