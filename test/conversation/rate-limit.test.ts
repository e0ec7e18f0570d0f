import { describe, expect, it } from 'vitest';
import { RateLimiter } from '../../src/conversation/rate-limit.js';

describe('RateLimiter', () => {
  it('allows perMinute requests in a sliding minute and says when the next one fits', () => {
    let now = 1_000_000;
    const limiter = new RateLimiter(2, () => now);
    limiter.take('u1');
    now += 10_000;
    limiter.take('u1');
    limiter.take('u2'); // other users are counted apart
    now += 5_000;
    expect(() => limiter.take('u1')).toThrow(expect.objectContaining({ code: 'OMG_ERR_RATE_LIMITED', details: { retryAfterS: 45 } }));
    expect(() => limiter.take('u1')).toThrow(/try again in 45 s/);
    now += 45_000; // the first request leaves the window
    expect(() => limiter.take('u1')).not.toThrow();
  });
});
