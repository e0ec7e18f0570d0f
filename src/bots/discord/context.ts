// State the handlers share for the life of the client: reply chains, the per-user limit, the events already
// handled (a resumed gateway session can replay them) and the turns now running (for the cancel button).
import type { Client } from 'discord.js';
import { RateLimiter } from '../../conversation/rate-limit.js';
import { ReplyChains } from './chains.js';
import type { DiscordDeps } from './deps.js';

const SEEN_LIMIT = 10_000;

export interface BotContext extends DiscordDeps {
  client: Client<true>;
  chains: ReplyChains;
  limiter: RateLimiter;
  /** True the first time an event id (message or interaction) is seen, false for a replay. */
  firstTime(eventId: string): boolean;
  /** Running turns: event id -> the user who started it (only they may cancel). */
  running: Map<string, string>;
}

export function createContext(deps: DiscordDeps, client: Client<true>): BotContext {
  const seen = new Set<string>();
  return {
    ...deps,
    client,
    chains: new ReplyChains(),
    limiter: new RateLimiter(deps.config.RATE_LIMIT_PER_MIN),
    firstTime(eventId) {
      if (seen.has(eventId)) return false;
      if (seen.size >= SEEN_LIMIT) seen.delete(seen.values().next().value!);
      seen.add(eventId);
      return true;
    },
    running: new Map(),
  };
}
