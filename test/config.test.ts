import { readFileSync } from 'node:fs';
import { parse } from 'dotenv';
import { describe, expect, it } from 'vitest';
import { ConfigError, configKeys, loadConfig, secretValues } from '../src/config.js';

function problemsOf(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig', () => {
  it('gives the embedded default with an empty environment', () => {
    const config = loadConfig({});
    expect(config.PORT).toBe(3000);
    expect(config.HOST).toBe('127.0.0.1');
    expect(config.REDIS_URL).toBeUndefined();
    expect(config.MODEL_DIR).toBe('models/omg-llava-nano');
    expect(config.WEB_ENABLED).toBe(true);
    expect(config.DISCORD_TOKEN).toBeUndefined();
  });

  it('parses numbers, booleans and lists, treats empty values as unset and ignores other variables', () => {
    const config = loadConfig({
      PORT: '8080', WEB_ENABLED: 'off', DISCORD_CDN_HOSTS: ' a.example , b.example,', REDIS_URL: '', PATH: '/bin',
    });
    expect(config.PORT).toBe(8080);
    expect(config.WEB_ENABLED).toBe(false);
    expect(config.DISCORD_CDN_HOSTS).toEqual(['a.example', 'b.example']);
    expect(config.REDIS_URL).toBeUndefined();
    expect('PATH' in config).toBe(false);
  });

  it('is frozen, lists included', () => {
    const config = loadConfig({});
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.SLACK_FILE_HOSTS)).toBe(true);
  });

  it('lists every problem at once, field and cross-field, with the offending value', () => {
    const problems = problemsOf({
      PORT: 'abc', ORT_PROVIDER: 'gpu', JOB_ATTEMPTS: '1.5', REDIS_URL: 'http://localhost', DISCORD_TOKEN: 'tok',
    });
    expect(problems.map((p) => p.split(':')[0]).sort()).toEqual(
      ['DISCORD_APPLICATION_ID', 'JOB_ATTEMPTS', 'ORT_PROVIDER', 'PORT', 'REDIS_URL'].sort(),
    );
    expect(problems).toContain('PORT: must be a whole number from 1 to 65535 (got "abc")');
    expect(problems).toContain('JOB_ATTEMPTS: must be a whole number from 1 to 20 (got "1.5")');
    expect(problems.find((p) => p.startsWith('ORT_PROVIDER'))).toContain('"gpu"');
  });

  it('never echoes a secret or a Redis URL in its messages', () => {
    const problems = problemsOf({ SLACK_BOT_TOKEN: 'xoxp-user-token-123', REDIS_URL: 'http://:hunter2@host' });
    expect(problems.join('\n')).not.toMatch(/xoxp-user-token-123|hunter2/);
    expect(problems.some((p) => p.startsWith('SLACK_BOT_TOKEN: must be a bot token'))).toBe(true);
  });

  it('requires a Slack receiver with a Slack bot token', () => {
    expect(problemsOf({ SLACK_BOT_TOKEN: 'xoxb-1' })[0]).toMatch(/^SLACK_SIGNING_SECRET/);
    expect(loadConfig({ SLACK_BOT_TOKEN: 'xoxb-1', SLACK_APP_TOKEN: 'xapp-1' }).SLACK_APP_TOKEN).toBe('xapp-1');
  });

  it('collects secret values, including a Redis password', () => {
    const config = loadConfig({
      DISCORD_TOKEN: 'dtok', DISCORD_APPLICATION_ID: '123', SLACK_BOT_TOKEN: 'xoxb-s', SLACK_SIGNING_SECRET: 'sig',
      REDIS_URL: 'redis://:p%40ss@localhost:6379',
    });
    expect(secretValues(config).sort()).toEqual(['dtok', 'p@ss', 'sig', 'xoxb-s']);
  });
});

describe('.env.example', () => {
  const text = readFileSync(new URL('../.env.example', import.meta.url), 'utf8');
  const example = parse(text);

  it('documents every option and nothing else', () => {
    expect(Object.keys(example).sort()).toEqual([...configKeys].sort());
  });

  it('is itself a valid configuration equal to the defaults', () => {
    expect(loadConfig(example)).toEqual(loadConfig({}));
  });
});

describe('docs/configuration.md', () => {
  const text = readFileSync(new URL('../docs/configuration.md', import.meta.url), 'utf8');
  const rows = [...text.matchAll(/^\| `([A-Z_]+)` \| ([^|]+) \|/gm)].map((m) => [m[1]!, m[2]!.trim()] as const);

  it('has one row per option', () => {
    expect(rows.map(([key]) => key).sort()).toEqual([...configKeys].sort());
  });

  it('states the defaults the schema applies', () => {
    const defaults = loadConfig({}) as Record<string, unknown>;
    for (const [key, documented] of rows) {
      const value = defaults[key];
      const expected = value === undefined ? 'unset' : Array.isArray(value) ? (value.length ? `\`${value.join(',')}\`` : 'empty') : `\`${String(value)}\``;
      expect(documented, key).toBe(expected);
    }
  });
});

