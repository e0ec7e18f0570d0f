import { describe, expect, it } from 'vitest';
import { parseArgs, UsageError } from '../../../src/bots/cli/args.js';

describe('parseArgs', () => {
  it('parses the full ask form, keeping prompt order', () => {
    const args = parseArgs([
      'ask', 'scene.png', 'What is <mark> next to <region>?',
      '--box', '1,2,30,40', '--point=0.25,0.5', '--mask', 'm.png',
      '--model', 'bundle', '--out', 'o.png', '--masks-dir', 'masks', '--json',
    ]);
    expect(args).toEqual({
      command: 'ask',
      image: 'scene.png',
      question: 'What is <mark> next to <region>?',
      prompts: [
        { kind: 'box', x1: 1, y1: 2, x2: 30, y2: 40, normalized: false },
        { kind: 'point', x: 0.25, y: 0.5, normalized: true },
        { kind: 'mask', file: 'm.png' },
      ],
      model: 'bundle',
      out: 'o.png',
      masksDir: 'masks',
      json: true,
    });
  });

  it('treats whole numbers as pixels even when they are 0 or 1', () => {
    const args = parseArgs(['ask', 'a.png', 'q', '--point', '1,0']);
    expect(args).toMatchObject({ prompts: [{ kind: 'point', x: 1, y: 0, normalized: false }] });
  });

  it('asks for help with no arguments or -h', () => {
    expect(parseArgs([])).toEqual({ command: 'help' });
    expect(parseArgs(['ask', '--help'])).toEqual({ command: 'help' });
  });

  it.each([
    [['segment', 'a.png', 'q'], /unknown command "segment"/],
    [['ask', 'a.png'], /IMAGE and a "QUESTION" \(got 1 argument\)/],
    [['ask', 'a.png', 'what', 'is', 'this'], /quote the question/],
    [['ask', 'a.png', '  '], /question is empty/],
    [['ask', 'a.png', 'q', '--point', '3'], /--point expects x,y with 2 non-negative numbers, got "3"/],
    [['ask', 'a.png', 'q', '--point', 'a,b'], /--point expects x,y/],
    [['ask', 'a.png', 'q', '--box', '1,2,3'], /--box expects x1,y1,x2,y2/],
    [['ask', 'a.png', 'q', '--box', '5,5,2,9'], /x1 < x2 and y1 < y2/],
    [['ask', 'a.png', 'q', '--point', '-1,2'], /--point expects/],
    [['ask', 'a.png', 'q', '--out'], /--out needs a value/],
    [['ask', 'a.png', 'q', '--jsn'], /unknown option "--jsn"/],
  ])('rejects %j', (argv, message) => {
    expect(() => parseArgs(argv)).toThrowError(UsageError);
    expect(() => parseArgs(argv)).toThrowError(message);
  });
});
