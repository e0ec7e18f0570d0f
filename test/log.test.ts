import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/log.js';

function capture() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  return { lines, stream };
}

const config = loadConfig({
  LOG_LEVEL: 'info',
  DISCORD_TOKEN: 'discord-secret-value', DISCORD_APPLICATION_ID: '42',
  SLACK_BOT_TOKEN: 'xoxb-slack-secret', SLACK_SIGNING_SECRET: 'sign"ing\\secret',
  REDIS_URL: 'redis://user:redispass@127.0.0.1:6390',
});

describe('createLogger', () => {
  it('redacts secret values anywhere: messages, nested fields, errors, escaped forms', () => {
    const { lines, stream } = capture();
    const log = createLogger(config, stream);
    log.info({ url: `https://x.example/?t=discord-secret-value` }, 'connecting with discord-secret-value');
    log.error({ err: new Error('auth failed for xoxb-slack-secret') }, 'slack');
    log.warn({ deep: { deeper: { note: 'sig sign"ing\\secret' } } }, 'nested');
    log.info({ redis: config.REDIS_URL }, 'redis');
    const out = lines.join('');
    expect(lines).toHaveLength(4);
    for (const secret of ['discord-secret-value', 'xoxb-slack-secret', 'redispass', 'sign\\"ing\\\\secret']) {
      expect(out).not.toContain(secret);
    }
    expect(out).toContain('[REDACTED]');
    expect(out).toContain('redis://user:[REDACTED]@127.0.0.1:6390');
  });

  it('redacts credential keys and credential-shaped strings it was not told about', () => {
    const { lines, stream } = capture();
    const log = createLogger(loadConfig({}), stream);
    log.info({ token: 'plain', req: { headers: { authorization: 'Bot abc.def.ghi' } } }, 'pasted xoxp-1234-abcd and Bearer abcdefghijkl');
    const entry = JSON.parse(lines[0]!) as { token: string; req: { headers: { authorization: string } }; msg: string };
    expect(entry.token).toBe('[REDACTED]');
    expect(entry.req.headers.authorization).toBe('[REDACTED]');
    expect(entry.msg).toBe('pasted [REDACTED] and [REDACTED]');
  });

  it('honours the level', () => {
    const { lines, stream } = capture();
    const log = createLogger(loadConfig({ LOG_LEVEL: 'warn' }), stream);
    log.info('hidden');
    log.warn('shown');
    expect(lines).toHaveLength(1);
  });
});
