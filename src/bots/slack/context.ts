// State the Slack handlers share: the per-user limit, the event ids already handled (Slack redelivers an event
// it thinks was missed, with X-Slack-Retry-Num) and each user's latest conversation per channel (for /omg).
import { RateLimiter } from '../../conversation/rate-limit.js';
import type { SlackDeps } from './deps.js';

const REMEMBERED = 10_000;

export interface SlackContext extends SlackDeps {
  limiter: RateLimiter;
  /** True the first time an event id is seen, false for a redelivery. */
  firstTime(eventId: string): boolean;
  setLatest(channel: string, user: string, thread: string): void;
  latestOf(channel: string, user: string): string | undefined;
}

export function createContext(deps: SlackDeps): SlackContext {
  const seen = new Set<string>();
  const latest = new Map<string, string>();
  return {
    ...deps,
    limiter: new RateLimiter(deps.config.RATE_LIMIT_PER_MIN),
    firstTime(eventId) {
      if (seen.has(eventId)) return false;
      if (seen.size >= REMEMBERED) seen.delete(seen.values().next().value!);
      seen.add(eventId);
      return true;
    },
    setLatest(channel, user, thread) {
      const key = `${channel}:${user}`;
      latest.delete(key); // re-insert so the oldest entry is the least recently used
      if (latest.size >= REMEMBERED) latest.delete(latest.keys().next().value!);
      latest.set(key, thread);
    },
    latestOf: (channel, user) => latest.get(`${channel}:${user}`),
  };
}
