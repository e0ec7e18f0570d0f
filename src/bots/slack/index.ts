// The Slack bot: a Bolt app over Socket Mode (SLACK_APP_TOKEN set) or HTTP events with signature verification,
// whose events and /omg command become conversation turns through the TurnService.
import type { AddressInfo } from 'node:net';
import { App, HTTPReceiver, SocketModeReceiver } from '@slack/bolt';
import { registerCommand } from './command.js';
import { createContext } from './context.js';
import type { SlackDeps } from './deps.js';
import { registerEvents } from './events.js';
import { boltLogger } from './logger.js';

export type { SlackDeps } from './deps.js';

export interface SlackBot {
  app: App;
  /** The HTTP events port (null in Socket Mode). */
  port: number | null;
  stop(): Promise<void>;
}

// 5xx and network failures: back off 1 s, 2 s, 4 s, 8 s. A 429 waits for its Retry-After (the Web API client).
const retryConfig = { retries: 4, factor: 2, minTimeout: 1000, maxTimeout: 8000, randomize: true };

/**
 * Checks the bot token (auth.test), then listens. A missing or refused token is one clear log line and a null
 * result, never a crash loop.
 */
export async function startSlack(deps: SlackDeps): Promise<SlackBot | null> {
  const { config, log } = deps;
  const { SLACK_BOT_TOKEN: token, SLACK_APP_TOKEN: appToken, SLACK_SIGNING_SECRET: signingSecret } = config;
  if (!token || (!appToken && !signingSecret)) {
    log.error('Slack bot not started: set SLACK_BOT_TOKEN and SLACK_APP_TOKEN (Socket Mode) or SLACK_SIGNING_SECRET (HTTP events); see docs/platforms.md.');
    return null;
  }
  const logger = boltLogger(log);
  const clientOptions = { retryConfig, ...(config.SLACK_API_URL ? { slackApiUrl: withSlash(config.SLACK_API_URL) } : {}) };
  // The Socket Mode client opens its connection through the Web API too (apps.connections.open), so it gets the
  // same client options.
  const receiver = appToken
    ? new SocketModeReceiver({ appToken, logger, installerOptions: { clientOptions } })
    : new HTTPReceiver({ signingSecret: signingSecret!, logger, processBeforeResponse: false });
  const app = new App({ token, logger, receiver, clientOptions, deferInitialization: true });
  try {
    await app.init();
  } catch (err) {
    log.error({ reason: err instanceof Error ? err.message : String(err) },
      'Slack bot not started: SLACK_BOT_TOKEN was refused (auth.test failed); check the token under OAuth & Permissions');
    return null;
  }
  const ctx = createContext(deps);
  registerEvents(app, ctx);
  registerCommand(app, ctx);
  app.error(async (err) => { log.error({ err }, 'slack: unhandled error'); });
  let port: number | null = null;
  try {
    if (appToken) await app.start();
    else port = ((await app.start({ port: config.SLACK_PORT, host: config.HOST })).address() as AddressInfo).port;
  } catch (err) {
    log.error({ reason: err instanceof Error ? err.message : String(err) },
      appToken ? 'Slack bot not started: Socket Mode could not connect; check SLACK_APP_TOKEN (connections:write)'
        : `Slack bot not started: cannot listen on ${config.HOST}:${config.SLACK_PORT}`);
    await app.stop().catch((stopErr: unknown) => log.debug({ err: stopErr }, 'slack: stopping after a failed start'));
    return null;
  }
  log.info({ mode: appToken ? 'socket' : 'http', port }, 'slack: ready');
  return { app, port, stop: () => app.stop().then(() => undefined) };
}

// The Web API client appends method names directly to the base URL.
function withSlash(url: string): string {
  return url.endsWith('/') ? url : `${url}/`;
}
