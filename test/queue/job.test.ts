import { describe, expect, it } from 'vitest';
import { jobIdFor, parseTurnJob } from '../../src/queue/job.js';
import { turnJob } from './fake-turn.js';

describe('jobIdFor', () => {
  it('is deterministic per (platform, event) and distinct otherwise', () => {
    expect(jobIdFor('discord', '1234')).toBe(jobIdFor('discord', '1234'));
    expect(jobIdFor('discord', '1234')).not.toBe(jobIdFor('slack', '1234'));
    expect(jobIdFor('discord', '12')).not.toBe(jobIdFor('discord', '123'));
    // The separator keeps ("a:b", "c") and ("a", "b:c") apart.
    expect(jobIdFor('a:b', 'c')).not.toBe(jobIdFor('a', 'b:c'));
  });

  it('is safe as a BullMQ job id: no colon, not an integer', () => {
    for (const id of [jobIdFor('slack', 'T1:C2:1700000000.000100'), jobIdFor('web', '1')]) {
      expect(id).toMatch(/^turn-[0-9a-f]{32}$/);
    }
  });
});

describe('parseTurnJob', () => {
  const valid = {
    ...turnJob('turn-1'),
    prompts: [
      { kind: 'point', x: 3, y: 2 },
      { kind: 'box', x1: 0, y1: 0, x2: 4, y2: 3 },
      { kind: 'mask', rle: { size: [3, 4], counts: [5, 2, 5] } },
    ],
    history: [{ text: 'Please segment the cat in this image.', prompts: [], raw: 'It is [SEG].' }],
  };

  it('accepts a version 1 job unchanged', () => {
    expect(parseTurnJob(structuredClone(valid))).toEqual(valid);
  });

  it.each([
    ['another version', { ...valid, v: 2 }],
    ['a missing image hash', { ...valid, image: { width: 4, height: 3 } }],
    ['a negative coordinate', { ...valid, prompts: [{ kind: 'point', x: -1, y: 0 }] }],
    ['an unknown prompt kind', { ...valid, prompts: [{ kind: 'scribble' }] }],
    ['an unknown task', { ...valid, task: 'dance' }],
    ['not an object', 'turn'],
  ])('rejects %s as OMG_ERR_JOB_INVALID', (_name, data) => {
    expect(() => parseTurnJob(data)).toThrow(expect.objectContaining({ code: 'OMG_ERR_JOB_INVALID', retryable: false }));
  });
});
