// The Discord bot: a discord.js client whose events go to small handlers (messages.ts, interactions.ts), which
// turn them into conversation turns through the TurnService. No model, queue or rendering code lives here.
import { once } from 'node:events';
import { Client, DefaultRestOptions, Events, GatewayIntentBits, Partials } from 'discord.js';
import { withServerErrorBackoff } from './backoff.js';
import { commandDefinitions } from './commands.js';
import { createContext } from './context.js';
import type { DiscordDeps } from './deps.js';
import { handleInteraction } from './interactions.js';
import { handleMessage } from './messages.js';

export type { DiscordDeps } from './deps.js';

export interface DiscordBot {
  client: Client<true>;
  stop(): Promise<void>;
}

/**
 * Logs in, registers the slash commands (in DISCORD_DEV_GUILD_ID only, when set: instant updates while developing)
 * and starts answering. A missing or refused token is one clear log line and a null result, never a crash loop.
 */
export async function startDiscord(deps: DiscordDeps): Promise<DiscordBot | null> {
  const { config, log } = deps;
  if (!config.DISCORD_TOKEN || !config.DISCORD_APPLICATION_ID) {
    log.error('Discord bot not started: set DISCORD_TOKEN and DISCORD_APPLICATION_ID (see docs/platforms.md).');
    return null;
  }
  const client = new Client({
    intents: [GatewayIntentBits.Guilds, GatewayIntentBits.GuildMessages, GatewayIntentBits.MessageContent, GatewayIntentBits.DirectMessages],
    partials: [Partials.Channel], // DM channels are not cached; without this their messages never arrive
    rest: {
      ...(config.DISCORD_API_URL ? { api: config.DISCORD_API_URL } : {}),
      makeRequest: withServerErrorBackoff(DefaultRestOptions.makeRequest),
      retries: 1, // network errors; 5xx answers are retried with backoff by the wrapper
    },
    enforceNonce: true, // a send retried after a lost response is not posted twice
  });
  const ready = once(client, Events.ClientReady);
  try {
    await client.login(config.DISCORD_TOKEN);
    await ready;
  } catch (err) {
    log.error({ reason: loginProblem(err) }, 'Discord bot not started: login failed');
    await client.destroy();
    return null;
  }
  const bot = client as Client<true>;
  const ctx = createContext(deps, bot);
  try {
    const guildId = config.DISCORD_DEV_GUILD_ID;
    await (guildId ? bot.application.commands.set(commandDefinitions, guildId) : bot.application.commands.set(commandDefinitions));
  } catch (err) {
    log.error({ err }, 'discord: slash commands could not be registered; mentions still work');
  }
  bot.on(Events.MessageCreate, (message) => {
    handleMessage(ctx, message).catch((err: unknown) => log.error({ err }, 'discord: message handler failed'));
  });
  bot.on(Events.InteractionCreate, (interaction) => {
    handleInteraction(ctx, interaction).catch((err: unknown) => log.error({ err }, 'discord: interaction handler failed'));
  });
  bot.on(Events.Error, (err) => log.error({ err }, 'discord: client error'));
  log.info({ user: bot.user.tag, guilds: bot.guilds.cache.size }, 'discord: ready');
  return { client: bot, stop: () => bot.destroy() };
}

// The usual reasons, in words that say what to fix.
function loginProblem(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  if (/token/i.test(message)) return 'DISCORD_TOKEN was refused: check it in the Developer Portal (Bot → Reset Token).';
  if (/disallowed intents/i.test(message)) return 'enable "Message Content Intent" under Bot → Privileged Gateway Intents.';
  return message;
}
