// The Discord adapter over the real service path: createCore (the same wiring as `npm start`) with the
// tiny-random bundle on an inference worker thread. Its answers are random text, so this checks the plumbing:
// a mention and /regions come back as replies in the thread, with the overlay where there are masks.
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDiscord, type DiscordBot } from '../../../src/bots/discord/index.js';
import { loadConfig } from '../../../src/config.js';
import { createLogger } from '../../../src/log.js';
import { createCore, type Core } from '../../../src/main.js';
import { createMetrics } from '../../../src/metrics.js';
import { BOT_ID, FakeDiscord, user } from '../../fakes/discord.js';

let fake: FakeDiscord;
let core: Core;
let bot: DiscordBot;
let png: Uint8Array;

beforeAll(async () => {
  png = new Uint8Array(await readFile('test/fixtures/tiny-random/golden-image.png'));
  fake = await FakeDiscord.start();
  const config = loadConfig({
    LOG_LEVEL: 'silent', MODEL_DIR: 'test/fixtures/tiny-random', ORT_THREADS: '1', WEB_ENABLED: 'false',
    DISCORD_TOKEN: 'fake-token', DISCORD_APPLICATION_ID: BOT_ID, DISCORD_API_URL: fake.apiUrl, DISCORD_CDN_HOSTS: fake.cdnHost,
  });
  const log = createLogger(config);
  core = await createCore(config, log, createMetrics());
  expect(core.modelError).toBeNull();
  const started = await startDiscord({ config, service: core.service, log });
  if (!started) throw new Error('the Discord bot did not start');
  bot = started;
});

afterAll(async () => {
  await bot?.stop();
  await core?.close();
  await fake?.close();
});

describe('Discord adapter with the tiny-random model', () => {
  it('answers a mention, then "segment everything" in its thread with an overlay', async () => {
    const alice = user('700000000000000001', 'alice');
    const image = fake.attachment('golden.png', png, 'image/png', { width: 45, height: 30 });
    const asked = fake.sendMessage({ author: alice, content: `<@${BOT_ID}> what is in the picture?`, mentionBot: true, attachments: [image] });
    const done = (n: number) => fake.until(() => {
      const finals = fake.botMessages(asked.id).filter((m) => m.components[0]?.components.some((b: { custom_id: string }) => b.custom_id.startsWith('omg:everything:')));
      return finals.length >= n ? finals : undefined;
    }, 120_000);
    const [first] = await done(1);
    expect(first.content).not.toMatch(/^⚠️/);

    fake.sendMessage({ author: alice, content: 'segment everything', channelId: asked.id });
    const [, regions] = await done(2);
    expect(regions.content).not.toMatch(/^⚠️/);
    expect(regions.attachments.map((a: { filename: string }) => a.filename)).toEqual(['overlay.png']);
    expect(regions.content).toMatch(/\(#\d+\)/);
  });
});
