// Load on loopback, bounded and self-stopping: LOAD_CONVERSATIONS conversations (default 200, half Discord, half
// Slack) sent at once through the fake platforms to the real adapters over one service (createCore with Redis),
// served by two model worker processes on the nano bundle, while each platform answers a few posts with 429 and 500.
// Every conversation gets exactly one answer; those refused while the queue was past MAX_QUEUE_DEPTH got the "busy"
// reply and are answered when they ask again. Prints p50/p99 of the queue wait and of the time to the first visible
// reply. Slow for CI: runs only with RUN_LOAD_TEST=1.
//   RUN_LOAD_TEST=1 npx vitest run test/reliability/load.test.ts
// Options: LOAD_MODEL_DIR (default models/omg-llava-nano) and LOAD_IMAGE (default a nano scene with a red circle;
// each conversation sends its own copy, one pixel changed); LOAD_MAX_DEPTH (20); LOAD_TURN_DELAY_MS (0), a pause
// before each turn, e.g. 100 to make the tiny-random bundle as slow as a real model; LOAD_DEADLINE_MS (240000).
// The busy path needs the queue to pass its depth: more than twice LOAD_MAX_DEPTH conversations and a model at
// least as slow as nano.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Queue } from 'bullmq';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDiscord, type DiscordBot } from '../../src/bots/discord/index.js';
import { startSlack, type SlackBot } from '../../src/bots/slack/index.js';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { createCore, type Core } from '../../src/main.js';
import { createMetrics } from '../../src/metrics.js';
import { REDIS_PREFIX } from '../../src/queue/blobs.js';
import { BOT_ID, FakeDiscord, user } from '../fakes/discord.js';
import { BOT_TOKEN, BOT_USER_ID, CHANNEL, FakeSlack, postSigned, SIGNING_SECRET } from '../fakes/slack.js';
import { redisTestUrl } from '../helpers/redis.js';
import { flush, freePort, root, startModelWorker, stop, type Child } from './processes.js';

const enabled = process.env.RUN_LOAD_TEST === '1';
const CONVERSATIONS = Number(process.env.LOAD_CONVERSATIONS ?? 200);
const MAX_DEPTH = Number(process.env.LOAD_MAX_DEPTH ?? 20);
const MODEL_DIR = process.env.LOAD_MODEL_DIR ?? join(root, 'models/omg-llava-nano');
const IMAGE = process.env.LOAD_IMAGE ?? join(root, 'test/inference/fixtures/nano-scenes/scene-0.png');
const TURN_DELAY_MS = process.env.LOAD_TURN_DELAY_MS ?? '0';
const url = new URL(redisTestUrl);
url.pathname = '/13';
const REDIS_URL = url.toString();

interface Conversation {
  index: number;
  platform: 'discord' | 'slack';
  id: string; // Discord: the asking message (its thread has the same id); Slack: the thread ts
  sentAt: number;
  user: string;
  asks: number;
}

let discord: FakeDiscord;
let slack: FakeSlack;
let core: Core;
let discordBot: DiscordBot;
let slackBot: SlackBot;
let eventsUrl: string;
let images: Uint8Array[]; // one per conversation
const workers: Child[] = [];

const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
};

describe.skipIf(!enabled)('load: concurrent conversations through fake Discord and Slack, two workers', () => {
  beforeAll(async () => {
    await flush(REDIS_URL);
    // Each conversation sends its own copy of the picture (one pixel differs), so no worker's image cache flatters the figures.
    const picture = await readFile(IMAGE);
    images = await Promise.all(Array.from({ length: CONVERSATIONS }, async (_, i) => new Uint8Array(await sharp(picture)
      .composite([{ input: { create: { width: 1, height: 1, channels: 3, background: { r: i % 256, g: (i >> 8) % 256, b: 7 } } }, left: 0, top: 0 }])
      .png().toBuffer())));
    discord = await FakeDiscord.start();
    slack = await FakeSlack.start();
    const config = loadConfig({
      LOG_LEVEL: process.env.LOAD_LOG_LEVEL ?? 'silent', REDIS_URL, WEB_ENABLED: 'false', MAX_QUEUE_DEPTH: String(MAX_DEPTH), RATE_LIMIT_PER_MIN: '10',
      DISCORD_TOKEN: 'fake-token', DISCORD_APPLICATION_ID: BOT_ID, DISCORD_API_URL: discord.apiUrl, DISCORD_CDN_HOSTS: discord.cdnHost,
      SLACK_BOT_TOKEN: BOT_TOKEN, SLACK_SIGNING_SECRET: SIGNING_SECRET, SLACK_API_URL: slack.apiUrl, SLACK_FILE_HOSTS: slack.filesHost,
      SLACK_PORT: String(await freePort()),
    });
    const log = createLogger(config);
    core = await createCore(config, log, createMetrics());
    discordBot = (await startDiscord({ config, service: core.service, log }))!;
    slackBot = (await startSlack({ config, service: core.service, log }))!;
    eventsUrl = `http://127.0.0.1:${slackBot.port}/slack/events`;
    for (let i = 0; i < 2; i++) workers.push(await startModelWorker({ REDIS_URL, MODEL_DIR, TURN_DELAY_MS }));
  }, 120_000);

  afterAll(async () => {
    for (const w of workers) await stop(w);
    await discordBot?.stop();
    await slackBot?.stop();
    await core?.close();
    await discord?.close();
    await slack?.close();
    await flush(REDIS_URL);
  });

  // What the user sees in each conversation.
  type Seen = { content?: string; text?: string; components?: { components: { custom_id: string }[] }[]; blocks?: unknown[] };
  const botMessages = (c: Conversation): Seen[] => (c.platform === 'discord' ? discord.botMessages(c.id) : slack.messages.filter((m) => m.thread_ts === c.id));
  const text = (m: Seen) => m.content ?? m.text ?? '';
  // A final answer: on Discord the message that offers "Segment everything", on Slack the placeholder once it holds the answer's blocks.
  const answers = (c: Conversation) =>
    botMessages(c).filter((m) =>
      c.platform === 'discord'
        ? (m.components ?? []).some((row) => row.components.some((b) => b.custom_id.startsWith('omg:everything:')))
        : (m.blocks ?? []).length > 0);
  const busy = (c: Conversation) => botMessages(c).filter((m) => /^⚠️.*busy/s.test(text(m)));
  const firstVisible = (c: Conversation) =>
    c.platform === 'discord'
      ? discord.calls.find((call) => call.path.includes(c.id))?.at
      : slack.calls.find((call) => call.args.thread_ts === c.id || call.args.timestamp === c.id)?.at;

  /** Sends the conversation's question with the image: the first ask mentions the bot, a later one (after "busy") asks again in the thread. */
  function ask(c: Conversation): void {
    c.asks++;
    if (c.platform === 'discord') {
      const attachments = [discord.attachment('scene.png', images[c.index]!, 'image/png')];
      if (c.asks === 1) c.id = discord.sendMessage({ author: user(c.user), content: `<@${BOT_ID}> segment the red circle`, mentionBot: true, attachments }).id;
      else discord.sendMessage({ author: user(c.user), content: 'segment the red circle', channelId: c.id, attachments });
      return;
    }
    const files = [slack.file('scene.png', images[c.index]!, 'image/png')];
    const ts = slack.ts();
    if (c.asks === 1) c.id = ts;
    const event = c.asks === 1
      ? { type: 'app_mention', user: c.user, text: `<@${BOT_USER_ID}> segment the red circle`, ts, channel: CHANNEL, files }
      : { type: 'app_mention', user: c.user, text: `<@${BOT_USER_ID}> segment the red circle`, ts, thread_ts: c.id, channel: CHANNEL, files };
    void postSigned(eventsUrl, JSON.stringify(slack.envelope(event)));
  }

  it(`answers every conversation exactly once (${CONVERSATIONS} at once, queue depth ${MAX_DEPTH})`, async () => {
    const conversations: Conversation[] = Array.from({ length: CONVERSATIONS }, (_, i) => ({
      index: i, platform: i % 2 === 0 ? 'discord' : 'slack', id: '', sentAt: 0, asks: 0,
      user: i % 2 === 0 ? String(710000000000000000n + BigInt(i)) : `U0LOAD${String(i).padStart(4, '0')}`,
    }));
    // The platforms push back now and then, as they do under load: answers must still be posted once.
    discord.fail('POST', /^\/channels\/\d+\/messages$/, 429, { retryAfter: 1, times: 3 });
    discord.fail('POST', /^\/channels\/\d+\/messages$/, 500, { afterHandling: true, times: 3 });
    slack.fail('chat.postMessage', 429, { retryAfter: 1, times: 3 });
    slack.fail('chat.update', 500, { times: 3 });
    const started = Date.now();
    for (const c of conversations) {
      c.sentAt = Date.now();
      ask(c);
    }
    // Refused ones ask again once the queue has room; stop when all are answered or after the deadline.
    const deadline = started + Number(process.env.LOAD_DEADLINE_MS ?? 240_000);
    while (Date.now() < deadline) {
      const open = conversations.filter((c) => answers(c).length === 0);
      if (open.length === 0) break;
      for (const c of open) if (busy(c).length === c.asks && (await core.queue.depth()) < MAX_DEPTH / 2) ask(c);
      await sleep(250);
    }
    const elapsed = Date.now() - started;
    const pushedBack = {
      discord: discord.calls.filter((c) => c.status === 429 || c.status === 500).length,
      slack: slack.calls.filter((c) => c.status === 429 || c.status === 500).length,
    };
    await sleep(3000); // late duplicates would show up here

    const unanswered = conversations.filter((c) => answers(c).length === 0);
    const duplicated = conversations.filter((c) => answers(c).length > 1);
    const refused = conversations.filter((c) => busy(c).length > 0);
    const queue = new Queue('turns', { connection: { url: REDIS_URL }, prefix: REDIS_PREFIX });
    const jobs = await queue.getJobs(['completed']);
    const failed = await queue.getJobs(['failed']);
    await queue.close();
    const waits = jobs.map((j) => (j.processedOn ?? 0) - j.timestamp);
    const ms = (v: number) => `${Math.round(v)} ms`;
    const firstReplyOf = (list: Conversation[]) => list.map((c) => (firstVisible(c) ?? NaN) - c.sentAt).filter(Number.isFinite);
    const firstReply = firstReplyOf(conversations);
    const onPlatform = (platform: Conversation['platform']) => {
      const times = firstReplyOf(conversations.filter((c) => c.platform === platform));
      return `${platform} ${ms(percentile(times, 50))} / ${ms(percentile(times, 99))}`;
    };
    process.stdout.write(
      `load: ${CONVERSATIONS} conversations (${conversations.filter((c) => c.platform === 'discord').length} Discord, ` +
        `${conversations.filter((c) => c.platform === 'slack').length} Slack), 2 workers, model ${MODEL_DIR.split('/').filter(Boolean).pop()} + ${TURN_DELAY_MS} ms per turn, max depth ${MAX_DEPTH}\n` +
        `  all answered in ${ms(elapsed)}; unanswered ${unanswered.length}, duplicated ${duplicated.length}, ` +
        `refused busy at least once ${refused.length} (all answered on a later ask), jobs completed ${jobs.length}, failed ${failed.length}, ` +
        `platform 429/500 answers met: Discord ${pushedBack.discord}, Slack ${pushedBack.slack}\n` +
        `  queue wait p50 ${ms(percentile(waits, 50))}, p99 ${ms(percentile(waits, 99))}\n` +
        `  first visible reply p50 ${ms(percentile(firstReply, 50))}, p99 ${ms(percentile(firstReply, 99))} (${firstReply.length} measured; ` +
        `p50 / p99 ${onPlatform('discord')}, ${onPlatform('slack')})\n`,
    );
    // On failure: what each unanswered conversation saw.
    expect(unanswered.map((c) => `${c.platform}:${c.id} asks ${c.asks}: ${JSON.stringify(botMessages(c).map(text))}`)).toEqual([]);
    expect(duplicated.map((c) => `${c.platform}:${c.id}`)).toEqual([]);
    expect(failed).toHaveLength(0);
    // The injected 429s and 500s were met (and retried: nothing is duplicated or missing above).
    expect(pushedBack).toEqual({ discord: 6, slack: 6 });
    expect(firstReply).toHaveLength(CONVERSATIONS);
    // Backpressure: the queue passed its depth and some were told the bot is busy, with their place.
    if (CONVERSATIONS > 2 * MAX_DEPTH) expect(refused.length).toBeGreaterThan(0);
    for (const c of refused) expect(text(busy(c)[0]!)).toMatch(/busy right now: you would be #\d+ in the queue/);
  }, 300_000);
});
