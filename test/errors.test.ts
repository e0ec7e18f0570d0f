import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { catalogue, errorCodes, isErrorCode, omgError, OmgError, toOmgError } from '../src/errors.js';

const doc = readFileSync(new URL('../docs/errors.md', import.meta.url), 'utf8');
const documentedRows = new Map(
  [...doc.matchAll(/^\| `(OMG_ERR_[A-Z_]+)` \|.*\| (yes|no) \|$/gm)].map((m) => [m[1], m[2] === 'yes'] as const),
);

describe('error catalogue', () => {
  it.each(errorCodes)('%s has a user message with and without details', (code) => {
    for (const details of [undefined, {}]) {
      const err = omgError(code, details);
      expect(err.userMessage.length).toBeGreaterThan(10);
      expect(err.userMessage).not.toMatch(/undefined|NaN|\[object/);
    }
  });

  it('documents every code in docs/errors.md with its retry flag, and nothing else', () => {
    for (const code of errorCodes) {
      expect(documentedRows.get(code), code).toBe(catalogue[code].retryable);
    }
    expect([...documentedRows.keys()].sort()).toEqual([...errorCodes].sort());
  });

  it('puts details into the message', () => {
    expect(omgError('OMG_ERR_IMAGE_TOO_LARGE', { bytes: 30 * 1_048_576, limit: 20 * 1_048_576 }).userMessage).toBe(
      'The image is too large (30.0 MB); the limit is 20.0 MB.',
    );
    expect(omgError('OMG_ERR_BAD_REQUEST', { correction: 'Write a box as x1,y1,x2,y2.' }).userMessage).toBe(
      'Write a box as x1,y1,x2,y2.',
    );
  });

  it('wraps unknown failures as a retryable internal error that keeps the cause', () => {
    const cause = new TypeError('boom at /some/file.ts:12');
    const err = toOmgError(cause);
    expect(err).toBeInstanceOf(OmgError);
    expect(err.code).toBe('OMG_ERR_INTERNAL');
    expect(err.retryable).toBe(true);
    expect(err.cause).toBe(cause);
    expect(err.userMessage).not.toContain('boom');
    const typed = omgError('OMG_ERR_NO_IMAGE');
    expect(toOmgError(typed)).toBe(typed);
  });

  it('recognises codes', () => {
    expect(isErrorCode('OMG_ERR_TIMEOUT')).toBe(true);
    expect(isErrorCode('OMG_ERR_NOPE')).toBe(false);
    expect(isErrorCode('toString')).toBe(false);
  });
});
