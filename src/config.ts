// The one reader of the environment: every option is declared here once, validated at boot and frozen.
// Keys keep their environment names so that a setting reads the same in `.env`, the README and the code.
import { existsSync, readFileSync } from 'node:fs';
import { parse as parseDotenv } from 'dotenv';
import { z } from 'zod';

const whole = (min: number, max = Number.MAX_SAFE_INTEGER) => {
  const error = max === Number.MAX_SAFE_INTEGER ? `must be a whole number >= ${min}` : `must be a whole number from ${min} to ${max}`;
  return z.coerce.number({ error }).int({ error }).min(min, { error }).max(max, { error });
};
const int = (def: number, min: number, max = Number.MAX_SAFE_INTEGER) => whole(min, max).default(def);
const bool = (def: boolean) => z.stringbool({ truthy: ['true', '1', 'yes', 'on'], falsy: ['false', '0', 'no', 'off'] }).default(def);
// Comma-separated values, e.g. "cdn.discordapp.com,media.discordapp.net".
const list = (def: string[] = []) =>
  z
    .string()
    .transform((s) => s.split(',').map((item) => item.trim()).filter((item) => item.length > 0))
    .default(def);
const httpUrl = z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' });
const secret = z.string().min(1);

const schema = z.object({
  /** Playground HTTP port. Default 3000. */
  PORT: int(3000, 1, 65535),
  /** Playground bind address; loopback unless you mean to expose it. Default 127.0.0.1. */
  HOST: z.string().min(1).default('127.0.0.1'),
  /** Redis for the BullMQ queue, conversations and blobs; unset = in-process queue and memory stores. */
  REDIS_URL: z.url({ protocol: /^rediss?$/, error: 'must be a redis:// or rediss:// URL' }).optional(),
  /** Model bundle directory. Default models/omg-llava-nano (the embedded default). */
  MODEL_DIR: z.string().min(1).default('models/omg-llava-nano'),
  /** onnxruntime execution provider: cpu, cuda, or auto (cuda when available, else cpu). Default cpu. */
  ORT_PROVIDER: z.enum(['cpu', 'cuda', 'auto']).default('cpu'),
  /** onnxruntime intra-op threads; 0 lets onnxruntime choose. Default 0. */
  ORT_THREADS: int(0, 0, 256),
  /** Image-feature cache bound in MiB. Default 256. */
  IMAGE_CACHE_MB: int(256, 0),
  /** Per-conversation KV cache bound in MiB (all conversations together). Default 512. */
  KV_CACHE_MB: int(512, 0),
  /** Largest accepted image file in bytes. Default 20971520 (20 MiB). */
  MAX_IMAGE_BYTES: int(20 * 1024 * 1024, 1),
  /** Largest accepted width x height, read from the header before decoding. Default 40000000. */
  MAX_IMAGE_PIXELS: int(40_000_000, 1),
  /** Jobs waiting or running before new requests get OMG_ERR_BUSY. Default 100. */
  MAX_QUEUE_DEPTH: int(100, 1),
  /** Wall-clock limit of one job in ms. Default 120000. */
  JOB_TIMEOUT_MS: int(120_000, 100),
  /** Attempts per job for transient failures (1 = no retry). Default 3. */
  JOB_ATTEMPTS: int(3, 1, 20),
  /** Conversation and image lifetime in Redis, in seconds. Default 604800 (7 days). */
  CONVERSATION_TTL_S: int(604_800, 60),
  /** pino log level. Default info. */
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** Serve the local playground. Default true. */
  WEB_ENABLED: bool(true),
  /** Separate port for /metrics and /healthz; unset = on the playground port. */
  METRICS_PORT: whole(1, 65535).optional(),
  /** Discord bot token (secret); set it to run the Discord bot. */
  DISCORD_TOKEN: secret.optional(),
  /** Discord application id, needed to register slash commands. */
  DISCORD_APPLICATION_ID: z.string().regex(/^\d+$/, 'must be a numeric snowflake').optional(),
  /** Discord REST base URL; unset = Discord's own. Tests point it at a loopback fake. */
  DISCORD_API_URL: httpUrl.optional(),
  /** Hosts that Discord attachments may be downloaded from. */
  DISCORD_CDN_HOSTS: list(['cdn.discordapp.com', 'media.discordapp.net']),
  /** Register slash commands in this guild only (instant updates while developing). */
  DISCORD_DEV_GUILD_ID: z.string().regex(/^\d+$/, 'must be a numeric snowflake').optional(),
  /** Allow-lists; empty = everywhere. */
  DISCORD_ALLOWED_GUILDS: list(),
  DISCORD_ALLOWED_CHANNELS: list(),
  DISCORD_ALLOWED_ROLES: list(),
  /** Slack bot token xoxb-... (secret); set it to run the Slack bot. */
  SLACK_BOT_TOKEN: secret.startsWith('xoxb-', 'must be a bot token starting with xoxb-').optional(),
  /** Slack signing secret (secret), for HTTP events. */
  SLACK_SIGNING_SECRET: secret.optional(),
  /** Slack app-level token xapp-... (secret); set it to use Socket Mode instead of HTTP events. */
  SLACK_APP_TOKEN: secret.startsWith('xapp-', 'must be an app-level token starting with xapp-').optional(),
  /** Port of the Slack HTTP events receiver. Default 3001. */
  SLACK_PORT: int(3001, 1, 65535),
  /** Slack Web API base URL; unset = Slack's own. Tests point it at a loopback fake. */
  SLACK_API_URL: httpUrl.optional(),
  /** Hosts that Slack files may be downloaded from. */
  SLACK_FILE_HOSTS: list(['files.slack.com']),
  /** Requests per user per minute, per platform. Default 10. */
  RATE_LIMIT_PER_MIN: int(10, 1),
});

export type Config = Readonly<z.output<typeof schema>>;
export type ConfigKey = keyof Config;
export const configKeys = Object.keys(schema.shape) as ConfigKey[];

/** Options whose values never appear in logs, job data or error messages. */
export const secretKeys = ['DISCORD_TOKEN', 'SLACK_BOT_TOKEN', 'SLACK_SIGNING_SECRET', 'SLACK_APP_TOKEN'] as const satisfies ConfigKey[];

export class ConfigError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

/** Validates the given environment; throws ConfigError listing every problem. Empty values count as unset. */
export function loadConfig(env: Record<string, string | undefined>): Config {
  const input: Record<string, string> = {};
  for (const key of configKeys) {
    const value = env[key]?.trim();
    if (value) input[key] = value;
  }
  const parsed = schema.safeParse(input);
  const problems = [...(parsed.error?.issues ?? []).map((issue) => describeIssue(issue, input)), ...crossFieldProblems(input)];
  if (problems.length > 0 || !parsed.success) throw new ConfigError(problems);
  return deepFreeze(parsed.data);
}

function describeIssue(issue: z.core.$ZodIssue, input: Record<string, string>): string {
  const key = String(issue.path[0] ?? '(config)');
  // REDIS_URL may carry a password.
  const hidden = (secretKeys as readonly string[]).includes(key) || key === 'REDIS_URL';
  const shown = hidden ? '' : ` (got "${input[key]}")`;
  return `${key}: ${issue.message}${key in input ? shown : ''}`;
}

// Checked on the raw values so that they are reported together with the per-field problems.
function crossFieldProblems(input: Record<string, string>): string[] {
  const problems: string[] = [];
  if (input.DISCORD_TOKEN && !input.DISCORD_APPLICATION_ID) {
    problems.push('DISCORD_APPLICATION_ID: is required when DISCORD_TOKEN is set');
  }
  if (input.SLACK_BOT_TOKEN && !input.SLACK_SIGNING_SECRET && !input.SLACK_APP_TOKEN) {
    problems.push('SLACK_SIGNING_SECRET: SLACK_SIGNING_SECRET (HTTP events) or SLACK_APP_TOKEN (Socket Mode) is required with SLACK_BOT_TOKEN');
  }
  const webOff = ['false', '0', 'no', 'off'].includes(input.WEB_ENABLED ?? '');
  if (input.METRICS_PORT && !webOff && Number(input.METRICS_PORT) === Number(input.PORT ?? 3000)) {
    problems.push('METRICS_PORT: must differ from PORT (leave it unset to serve /metrics on the playground port)');
  }
  return problems;
}

/** The process environment over the `.env` file of the working directory (a real variable wins). */
export function loadConfigFromEnvironment(envFile = '.env'): Config {
  const fromFile = existsSync(envFile) ? parseDotenv(readFileSync(envFile)) : {};
  return loadConfig({ ...fromFile, ...process.env });
}

/** Secret values present in this config (tokens, and a password inside REDIS_URL), for log redaction. */
export function secretValues(config: Config): string[] {
  const values: string[] = secretKeys.map((key) => config[key]).filter((v): v is string => typeof v === 'string');
  if (config.REDIS_URL) {
    const url = new URL(config.REDIS_URL);
    if (url.password) values.push(decodeURIComponent(url.password));
  }
  return values;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}
