// The Discord adapter end to end: the real discord.js client against the loopback fake Discord (REST, gateway,
// CDN), and a real TurnService whose worker is a scripted double (test/fakes/turn-service.ts).
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDiscord, type DiscordBot } from '../../../src/bots/discord/index.js';
import { loadConfig } from '../../../src/config.js';
import { createLogger } from '../../../src/log.js';
import { jobIdFor } from '../../../src/queue/job.js';
import { BOT_ID, CHANNEL_ID, FakeDiscord, GUILD_ID, ROLE_ID, user } from '../../fakes/discord.js';
import { ANSWER, testService } from '../../fakes/turn-service.js';

const alice = user('700000000000000001', 'alice');
const MAX_IMAGE_BYTES = 500_000;
const EPHEMERAL = 64;

let fake: FakeDiscord;
let bot: DiscordBot;
let png: Uint8Array;
const { service, worker } = testService({ tokenMs: 150 }); // ~1.2 s per answer: long enough to stream

function config(env: Record<string, string> = {}) {
  return loadConfig({
    LOG_LEVEL: 'silent', DISCORD_TOKEN: 'fake-token', DISCORD_APPLICATION_ID: BOT_ID, DISCORD_API_URL: fake.apiUrl,
    DISCORD_CDN_HOSTS: fake.cdnHost, DISCORD_DEV_GUILD_ID: GUILD_ID, MAX_IMAGE_BYTES: String(MAX_IMAGE_BYTES),
    RATE_LIMIT_PER_MIN: '5', ...env,
  });
}

const mention = (text: string) => `<@${BOT_ID}> ${text}`;
const posts = (channelId: string) => fake.calls.filter((c) => c.method === 'POST' && c.path === `/channels/${channelId}/messages`);
/** The bot's answer in a channel once it carries the overlay. */
const answerIn = (channelId: string, skip = 0) =>
  fake.until(() => fake.botMessages(channelId).filter((m) => m.attachments.length > 0)[skip]);
const errorIn = (channelId: string) => fake.until(() => fake.botMessages(channelId).find((m) => m.content.startsWith('⚠️')));

beforeAll(async () => {
  png = new Uint8Array(await sharp({ create: { width: 64, height: 48, channels: 3, background: '#cc2222' } }).png().toBuffer());
  fake = await FakeDiscord.start();
  const started = await startDiscord({ config: config(), service, log: createLogger(config()) });
  if (!started) throw new Error('the Discord bot did not start');
  bot = started;
});

afterAll(async () => {
  await bot?.stop();
  await fake?.close();
});

describe('Discord adapter', () => {
  it('connects through GET /gateway/bot and registers the slash commands in the development guild', async () => {
    expect(fake.calls[0]).toMatchObject({ method: 'GET', path: '/gateway/bot' });
    const registration = await fake.until(() => fake.calls.find((c) => c.method === 'PUT'));
    expect(registration.path).toBe(`/applications/${BOT_ID}/guilds/${GUILD_ID}/commands`);
    expect(registration.body.map((c: { name: string }) => c.name)).toEqual(['ask', 'segment', 'caption', 'regions', 'describe']);
    expect(registration.body[0].options[0]).toMatchObject({ name: 'image', type: 11, required: true });
  });

  it('answers a mention with an image in a new thread: grounded text, overlay, buttons; a thread message continues it', async () => {
    const image = fake.attachment('scene.png', png, 'image/png', { width: 64, height: 48 });
    const downloadsBefore = fake.cdnDownloads;
    const asked = fake.sendMessage({ author: alice, content: mention('what is in the picture?'), mentionBot: true, attachments: [image] });

    const answer = await answerIn(asked.id); // the thread takes the message's id
    expect(fake.calls.some((c) => c.path === `/channels/${CHANNEL_ID}/messages/${asked.id}/threads`)).toBe(true);
    expect(fake.calls.some((c) => c.path === `/channels/${asked.id}/typing`)).toBe(true);
    expect(answer.content).toContain('🟧 **a red circle** (#1)');
    expect(answer.content).toContain('There is');
    expect(answer.attachments[0].filename).toBe('overlay.png');
    const upload = fake.calls.find((c) => c.files.some((f) => f.name === 'overlay.png'))!;
    expect(upload.files[0]!.bytes.subarray(1, 4)).toEqual(new Uint8Array([0x50, 0x4e, 0x47])); // PNG
    // /describe suggests the regions of alice's latest conversation here.
    const typing = fake.autocomplete({ author: alice, name: 'describe', option: 'region', typed: 'red' });
    const suggestions = await fake.until(() => fake.calls.find((c) => c.path.startsWith(`/interactions/${typing.id}/`)));
    expect(suggestions.body).toEqual({ type: 8, data: { choices: [{ name: '#1 a red circle', value: '#1' }] } });

    const buttons = answer.components[0].components.map((b: { custom_id: string }) => b.custom_id);
    expect(buttons).toEqual([expect.stringMatching(/^omg:masks:/), expect.stringMatching(/^omg:everything:/)]);
    expect(fake.cdnDownloads).toBe(downloadsBefore + 1);

    // Progress: the placeholder is posted once, then edited with the streamed text at most once a second.
    const writes = fake.calls.filter((c) => (c.method === 'POST' && c.path === `/channels/${asked.id}/messages`)
      || (c.method === 'PATCH' && c.path === `/channels/${asked.id}/messages/${answer.id}`));
    expect(writes[0]!.method).toBe('POST');
    expect(writes[0]!.body.content).toMatch(/^⏳ queued, #\d+$/);
    expect(writes.some((w) => typeof w.body.content === 'string' && w.body.content.endsWith('▌'))).toBe(true);
    for (let i = 1; i < writes.length; i++) expect(writes[i]!.at - writes[i - 1]!.at).toBeGreaterThanOrEqual(990);

    // Follow-up in the thread: no mention, no image; the conversation's stored image is used.
    const jobsBefore = worker.jobs.length;
    fake.sendMessage({ author: alice, content: 'and where is it?', channelId: asked.id });
    const second = await answerIn(asked.id, 1);
    expect(second.content).toContain('(#2)'); // the second turn's mask is region #2 of the same conversation
    expect(fake.cdnDownloads).toBe(downloadsBefore + 1);
    const [first, next] = worker.jobs.slice(jobsBefore - 1);
    expect(next!.conversationId).toBe(first!.conversationId);
    expect(next!.image.hash).toBe(first!.image.hash);
    expect(next!.history).toHaveLength(1);
  });

  it('continues after a reply to the bot; finds the image on the replied-to message or earlier in a thread; answers DMs without a mention', async () => {
    const image = fake.attachment('scene.png', png, 'image/png', { width: 64, height: 48 });
    const gina = user('700000000000000006', 'gina');
    // /ask answers in the channel; replying to that answer (no mention) continues its conversation.
    const asked = fake.slashCommand({ author: gina, name: 'ask', options: [{ name: 'image', type: 11, value: image.id }, { name: 'question', type: 3, value: 'what is it?' }], attachments: [image] });
    const answer = await fake.until(() => fake.botMessages(CHANNEL_ID).find((m) => m.interaction_metadata?.id === asked.id && m.attachments.length > 0));
    fake.sendMessage({ author: gina, content: 'and its colour?', replyTo: answer.id });
    const followUp = await fake.until(() => fake.botMessages(CHANNEL_ID).find((m) => m.message_reference && m.attachments.length > 0 && m.content.includes('(#2)')));
    expect(followUp.content).toContain('🟦 **a red circle** (#2)');

    // Someone posts an image; another user replies to it with a mention: the parent's image is used.
    const photo = fake.attachment('photo.png', png, 'image/png', { width: 64, height: 48 });
    const posted = fake.sendMessage({ author: user('700000000000000007', 'hank'), content: 'look at this', attachments: [photo] });
    const downloads = fake.cdnDownloads;
    const question = fake.sendMessage({ author: gina, content: mention('what is that?'), mentionBot: true, replyTo: posted.id });
    expect((await answerIn(question.id)).content).toContain('(#1)');
    expect(fake.cdnDownloads).toBe(downloads + 1);

    // In a thread someone else opened, a mention without an image takes the latest image posted there.
    const mia = user('700000000000000013', 'mia'); // gina's requests count against her per-minute limit
    const thread = fake.userThread(mia, 'holiday photos');
    fake.sendMessage({ author: user('700000000000000007', 'hank'), content: 'from the beach', channelId: thread,
      attachments: [fake.attachment('beach.png', png, 'image/png', { width: 64, height: 48 })] });
    fake.sendMessage({ author: mia, content: mention('what is in the photo above?'), mentionBot: true, channelId: thread });
    expect((await answerIn(thread)).content).toContain('(#1)');
    expect(fake.calls.some((c) => c.method === 'GET' && c.path === `/channels/${thread}/messages`)).toBe(true);

    // DMs need no mention; a later DM without an image continues the latest conversation there.
    const dm = '300000000000000099';
    fake.sendMessage({ author: gina, content: 'what is this?', channelId: dm, dm: true, attachments: [fake.attachment('dm.png', png, 'image/png', { width: 64, height: 48 })] });
    expect((await answerIn(dm)).content).toContain('(#1)');
    fake.sendMessage({ author: gina, content: 'tell me more', channelId: dm, dm: true });
    expect((await answerIn(dm, 1)).content).toContain('(#2)');
  });

  it('buttons: all masks separately, segment everything, and cancel while running', async () => {
    const image = fake.attachment('scene.png', png, 'image/png', { width: 64, height: 48 });
    const ivan = user('700000000000000008', 'ivan');
    const asked = fake.sendMessage({ author: ivan, content: mention('segment the circle'), mentionBot: true, attachments: [image] });
    const answer = await answerIn(asked.id);
    const [masksId, everythingId] = answer.components[0].components.map((b: { custom_id: string }) => b.custom_id);

    const masks = fake.buttonPress({ author: ivan, messageId: answer.id, customId: masksId });
    const cutouts = await fake.until(() => fake.botMessages(asked.id).find((m) => m.interaction_metadata?.id === masks.id && m.attachments.length > 0));
    expect(cutouts.attachments.map((a: { filename: string }) => a.filename)).toEqual(['mask-1.png']);
    expect(cutouts.content).toBe('🟧 #1 a red circle');

    const everything = fake.buttonPress({ author: ivan, messageId: answer.id, customId: everythingId });
    const regions = await fake.until(() => fake.botMessages(asked.id).find((m) => m.interaction_metadata?.id === everything.id && m.attachments.length > 0));
    expect(regions.content).toContain('🟦 **left half** (#2)');
    expect(regions.content).toContain('🟩 **right half** (#3)');

    // Cancel: pressed on the progress message of a running turn, by the person who asked.
    fake.sendMessage({ author: ivan, content: 'describe it again', channelId: asked.id });
    const progress = await fake.until(() => fake.botMessages(asked.id).find((m) => m.components[0]?.components[0]?.custom_id?.startsWith('omg:cancel:')));
    const cancelId = progress.components[0].components[0].custom_id;
    const stranger = fake.buttonPress({ author: user('700000000000000010', 'judy'), messageId: progress.id, customId: cancelId });
    const refused = await fake.until(() => fake.calls.find((c) => c.path.startsWith(`/interactions/${stranger.id}/`)));
    expect(refused.body.data).toMatchObject({ flags: EPHEMERAL, content: expect.stringMatching(/Only the person who asked/) });
    fake.buttonPress({ author: ivan, messageId: progress.id, customId: cancelId });
    await fake.until(() => fake.message(progress.id).content === '⚠️ The request was cancelled.' || undefined);
    expect(fake.message(progress.id).components).toEqual([]);
  });

  it('runs a repeated interaction id once', async () => {
    const image = fake.attachment('scene.png', png, 'image/png', { width: 64, height: 48 });
    const options = [{ name: 'image', type: 11, value: image.id }, { name: 'target', type: 3, value: 'the red circle' }];
    const first = fake.slashCommand({ author: alice, name: 'segment', options, attachments: [image] });
    fake.slashCommand({ author: alice, name: 'segment', options, attachments: [image], id: first.id });
    const answer = await fake.until(() => fake.botMessages().find((m) => m.interaction_metadata?.id === first.id && m.attachments.length > 0));
    expect(answer.content).toContain('(#1)');
    const callbacks = fake.calls.filter((c) => c.path.startsWith(`/interactions/${first.id}/`));
    expect(callbacks).toHaveLength(1);
    expect(worker.jobs.filter((j) => j.id === jobIdFor('discord', first.id))).toHaveLength(1);
  });

  it('gives clear replies for a non-image and for an oversized image, without downloading', async () => {
    const downloadsBefore = fake.cdnDownloads;
    const text = fake.attachment('notes.txt', new TextEncoder().encode('hello'), 'text/plain');
    const first = fake.sendMessage({ author: user('700000000000000002', 'bob'), content: mention('what is this?'), mentionBot: true, attachments: [text] });
    expect((await errorIn(CHANNEL_ID)).content).toMatch(/not a supported image/);
    expect(fake.message(fake.botMessages(CHANNEL_ID).at(-1)!.id).message_reference.message_id).toBe(first.id);

    const bare = fake.sendMessage({ author: user('700000000000000002', 'bob'), content: mention('hello'), mentionBot: true });
    const noImage = await fake.until(() => fake.botMessages(CHANNEL_ID).find((m) => m.message_reference?.message_id === bare.id));
    expect(noImage.content).toMatch(/^⚠️ There is no image in this conversation yet/);
    expect(fake.calls.some((c) => c.path.endsWith(`/messages/${bare.id}/threads`))).toBe(false);

    const big = fake.attachment('huge.png', png, 'image/png', { width: 64, height: 48, bytes: MAX_IMAGE_BYTES + 1 });
    fake.sendMessage({ author: user('700000000000000002', 'bob'), content: mention('and this?'), mentionBot: true, attachments: [big] });
    const tooLarge = await fake.until(() => fake.botMessages(CHANNEL_ID).find((m) => /too large/.test(m.content)));
    expect(tooLarge.content).toMatch(/^⚠️ The image is too large \(0\.5 MB\)/);
    expect(fake.cdnDownloads).toBe(downloadsBefore);
  });

  it('refuses an attachment that redirects', async () => {
    const moved = fake.redirectAttachment('moved.png', 'http://example.invalid/x.png');
    fake.sendMessage({ author: user('700000000000000003', 'carol'), content: mention('look'), mentionBot: true, attachments: [moved] });
    const reply = await fake.until(() => fake.botMessages(CHANNEL_ID).find((m) => /could not be downloaded/.test(m.content)));
    expect(reply.content).toMatch(/^⚠️/);
  });

  it('answers a rate-limited user with an ephemeral "try again in N s"', async () => {
    const dave = user('700000000000000004', 'dave');
    const region = [{ name: 'region', type: 3, value: '#1' }];
    for (let i = 0; i < 5; i++) fake.slashCommand({ author: dave, name: 'describe', options: region });
    const limited = fake.slashCommand({ author: dave, name: 'describe', options: region });
    const notice = await fake.until(() => fake.calls.find((c) => c.path.startsWith(`/interactions/${limited.id}/`)));
    expect(notice.body.type).toBe(4); // an immediate reply, not a deferral
    expect(notice.body.data.flags & EPHEMERAL).toBe(EPHEMERAL);
    expect(notice.body.data.content).toMatch(/try again in \d+ s/);
  });

  it('waits out a 429 for its retry_after and posts once; a 5xx after the post is retried with backoff and does not post twice', async () => {
    const image = fake.attachment('scene.png', png, 'image/png', { width: 64, height: 48 });
    fake.fail('POST', /^\/channels\/\d+\/messages$/, 429, { retryAfter: 1 });
    const asked = fake.sendMessage({ author: user('700000000000000005', 'frank'), content: mention('what?'), mentionBot: true, attachments: [image] });
    await answerIn(asked.id);
    const [limited, retried] = posts(asked.id);
    expect(limited!.status).toBe(429);
    expect(retried!.status).toBe(200);
    expect(retried!.at - limited!.at).toBeGreaterThanOrEqual(1000);
    expect(fake.botMessages(asked.id)).toHaveLength(1);

    // Discord commits the message, then answers 500: discord.js retries with the same nonce, Discord dedupes.
    fake.fail('POST', new RegExp(`^/channels/${asked.id}/messages$`), 500, { afterHandling: true });
    fake.sendMessage({ author: user('700000000000000005', 'frank'), content: 'more please', channelId: asked.id });
    await answerIn(asked.id, 1);
    const failedAt = posts(asked.id).findIndex((c) => c.status === 500);
    expect(failedAt).toBeGreaterThanOrEqual(0);
    expect(posts(asked.id)[failedAt + 1]!.at - posts(asked.id)[failedAt]!.at).toBeGreaterThanOrEqual(500); // backed off
    expect(fake.botMessages(asked.id)).toHaveLength(2);
  });

  it('reports a refused token once and does not start', async () => {
    const lines: string[] = [];
    const log = createLogger(config({ LOG_LEVEL: 'info' }), { write: (line: string) => void lines.push(line) });
    fake.fail('GET', /^\/gateway\/bot$/, 401);
    const refused = await startDiscord({ config: config({ DISCORD_TOKEN: 'wrong-token' }), service, log });
    expect(refused).toBeNull();
    const errors = lines.filter((l) => JSON.parse(l).level >= 50);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toContain('DISCORD_TOKEN was refused');
  });
});

describe('Discord adapter allow-lists', () => {
  it('answers members with an allowed role, ignores other messages and refuses their commands privately', async () => {
    const guarded = await FakeDiscord.start();
    const env = {
      LOG_LEVEL: 'silent', DISCORD_TOKEN: 'fake-token', DISCORD_APPLICATION_ID: BOT_ID, DISCORD_API_URL: guarded.apiUrl,
      DISCORD_CDN_HOSTS: guarded.cdnHost, DISCORD_ALLOWED_ROLES: ROLE_ID,
    };
    const guardedBot = await startDiscord({ config: loadConfig(env), service: testService().service, log: createLogger(loadConfig(env)) });
    try {
      const image = () => guarded.attachment('scene.png', png, 'image/png', { width: 64, height: 48 });
      const outsider = guarded.sendMessage({ author: user('700000000000000011', 'kim'), content: mention('hi'), mentionBot: true, attachments: [image()] });
      const command = guarded.slashCommand({ author: user('700000000000000011', 'kim'), name: 'regions', options: [] });
      const refusal = await guarded.until(() => guarded.calls.find((c) => c.path.startsWith(`/interactions/${command.id}/`)));
      expect(guarded.calls.find((c) => c.method === 'PUT')!.path).toBe(`/applications/${BOT_ID}/commands`); // global without a dev guild
      expect(refusal.body.data).toMatchObject({ flags: EPHEMERAL, content: '⚠️ The bot is not enabled here.' });

      const member = guarded.sendMessage({ author: user('700000000000000012', 'lee'), content: mention('hi'), mentionBot: true, attachments: [image()], roles: [ROLE_ID] });
      await guarded.until(() => guarded.botMessages(member.id).find((m) => m.attachments.length > 0));
      expect(guarded.calls.some((c) => c.path.includes(outsider.id))).toBe(false);
    } finally {
      await guardedBot?.stop();
      await guarded.close();
    }
  });
});
