// Per-user request limit for the chat adapters: at most `perMinute` requests in any sliding minute. Checked before
// anything is downloaded or queued, so a flood costs almost nothing. Memory is bounded by the users active in
// the last minute.
import { omgError } from '../errors.js';

const WINDOW_MS = 60_000;

export class RateLimiter {
  private readonly recent = new Map<string, number[]>(); // key -> request times (ms) within the window

  constructor(private readonly perMinute: number, private readonly now: () => number = Date.now) {}

  /** Counts one request for `key`; throws OMG_ERR_RATE_LIMITED (details.retryAfterS) when over the limit. */
  take(key: string): void {
    const t = this.now();
    this.prune(t);
    const times = this.recent.get(key) ?? [];
    if (times.length >= this.perMinute) {
      const retryAfterS = Math.max(1, Math.ceil((times[0]! + WINDOW_MS - t) / 1000));
      throw omgError('OMG_ERR_RATE_LIMITED', { retryAfterS });
    }
    times.push(t);
    this.recent.set(key, times);
  }

  private prune(t: number): void {
    for (const [key, times] of this.recent) {
      while (times.length > 0 && times[0]! <= t - WINDOW_MS) times.shift();
      if (times.length === 0) this.recent.delete(key);
    }
  }
}
