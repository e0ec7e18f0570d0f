// Structured logs with pino. Secrets are removed twice: by key (pino's redact paths) and by value anywhere in the
// final line, so a token inside an error message, a URL or a stack never reaches the log.
import { pino, type DestinationStream, type Logger } from 'pino';
import { secretValues, type Config } from './config.js';

export type { Logger };

const CENSOR = '[REDACTED]';

// Keys that hold credentials wherever they appear (one level of nesting, plus request headers).
const redactPaths = [
  'token', '*.token', 'password', '*.password', 'secret', '*.secret',
  'DISCORD_TOKEN', '*.DISCORD_TOKEN', 'SLACK_BOT_TOKEN', '*.SLACK_BOT_TOKEN',
  'SLACK_SIGNING_SECRET', '*.SLACK_SIGNING_SECRET', 'SLACK_APP_TOKEN', '*.SLACK_APP_TOKEN',
  'headers.authorization', '*.headers.authorization', 'headers.cookie', '*.headers.cookie',
];

// Credential shapes redacted even when the config does not know them (e.g. a token pasted into a message).
const secretPatterns = [
  /\bxox[abposr]-[A-Za-z0-9-]+/g, // Slack bot/user tokens
  /\bxapp-[A-Za-z0-9-]+/g, // Slack app-level tokens
  /\b[MN][A-Za-z\d_-]{23,27}\.[A-Za-z\d_-]{6}\.[A-Za-z\d_-]{27,}/g, // Discord bot tokens
  /\b(Bot|Bearer) [A-Za-z0-9._~+/=-]{8,}/g, // Authorization header values
  /(rediss?:\/\/[^:/@\s]*:)[^@\s]+@/g, // Redis URL passwords
];

/** Replaces known secret values (raw and JSON-escaped) and credential-shaped strings in one log line. */
export function redactSecrets(line: string, secrets: readonly string[]): string {
  let out = line;
  for (const secret of secrets) {
    for (const form of new Set([secret, JSON.stringify(secret).slice(1, -1)])) out = out.split(form).join(CENSOR);
  }
  for (const pattern of secretPatterns) {
    out = out.replace(pattern, (match, prefix: unknown) => (typeof prefix === 'string' && prefix.includes('://') ? `${prefix}${CENSOR}@` : CENSOR));
  }
  return out;
}

/** The process logger; `destination` lets tests capture lines. */
export function createLogger(config: Config, destination?: DestinationStream): Logger {
  const secrets = secretValues(config).filter((s) => s.length >= 4);
  const options = {
    level: config.LOG_LEVEL,
    redact: { paths: redactPaths, censor: CENSOR },
    hooks: { streamWrite: (line: string) => redactSecrets(line, secrets) },
  };
  return destination ? pino(options, destination) : pino(options);
}
