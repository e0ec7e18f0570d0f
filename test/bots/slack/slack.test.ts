// The Slack adapter end to end: the real Bolt app (HTTP receiver, signature checks) and Web API client against
// the loopback fake Slack, with signed event POSTs, and a real TurnService whose worker is a scripted double.
import { createServer } from 'node:net';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSlack, type SlackBot } from '../../../src/bots/slack/index.js';
import { loadConfig } from '../../../src/config.js';
import { createLogger } from '../../../src/log.js';
import { APP_TOKEN, BOT_TOKEN, BOT_USER_ID, CHANNEL, FakeSlack, SIGNING_SECRET, postSigned, slashCommandBody } from '../../fakes/slack.js';
import { testService } from '../../fakes/turn-service.js';

const MAX_IMAGE_BYTES = 500_000;

let fake: FakeSlack;
let bot: SlackBot;
let eventsUrl: string;
let png: Uint8Array;
const { service, worker } = testService({ tokenMs: 150 });

function config(env: Record<string, string> = {}) {
  return loadConfig({
    LOG_LEVEL: 'silent', SLACK_BOT_TOKEN: BOT_TOKEN, SLACK_SIGNING_SECRET: SIGNING_SECRET, SLACK_API_URL: fake.apiUrl,
    SLACK_FILE_HOSTS: fake.filesHost, MAX_IMAGE_BYTES: String(MAX_IMAGE_BYTES), RATE_LIMIT_PER_MIN: '5', ...env,
  });
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const send = (event: Record<string, unknown>, opts: { eventId?: string; retryNum?: number; secret?: string } = {}) => {
  const envelope = fake.envelope(event, opts.eventId);
  return { envelope, response: postSigned(eventsUrl, JSON.stringify(envelope), opts) };
};
const mention = (user: string, text: string, files?: unknown[]) =>
  ({ type: 'app_mention', user, text: `<@${BOT_USER_ID}> ${text}`, ts: fake.ts(), channel: CHANNEL, ...(files ? { files } : {}) });
/** Messages the bot posted in a thread, in order. */
const inThread = (thread: string) => fake.messages.filter((m) => m.thread_ts === thread);
const answered = (thread: string, n = 1) =>
  fake.until(() => inThread(thread).filter((m) => m.files.length > 0).length >= n ? inThread(thread) : undefined);

beforeAll(async () => {
  png = new Uint8Array(await sharp({ create: { width: 64, height: 48, channels: 3, background: '#cc2222' } }).png().toBuffer());
  fake = await FakeSlack.start();
  const port = await freePort();
  const started = await startSlack({ config: config({ SLACK_PORT: String(port) }), service, log: createLogger(config()) });
  if (!started) throw new Error('the Slack bot did not start');
  bot = started;
  eventsUrl = `http://127.0.0.1:${bot.port}/slack/events`;
});

afterAll(async () => {
  await bot?.stop();
  await fake?.close();
});

describe('Slack adapter', () => {
  it('answers a mention with a file in its thread: updated placeholder, Block Kit legend, overlay upload; a thread reply continues', async () => {
    const file = fake.file('scene.png', png, 'image/png', { width: 64, height: 48 });
    const event = mention('U0ALICE', 'what is in the picture?', [file]);
    const { response } = send(event);
    expect((await response).status).toBe(200);

    const thread = String(event.ts);
    const [placeholder, shared] = await answered(thread);
    expect(placeholder!.updates).toBeGreaterThan(0);
    const section = placeholder!.blocks![0];
    expect(section.text.text).toContain('🟧 *a red circle* (#1)');
    const legend = placeholder!.blocks!.find((b: { type: string }) => b.type === 'context');
    expect(legend.elements[0].text).toBe('🟧 #1 a red circle');
    const upload = fake.uploads.get(shared!.files[0]!)!;
    expect(upload.filename).toBe('overlay.png');
    expect(upload.bytes!.subarray(1, 4)).toEqual(new Uint8Array([0x50, 0x4e, 0x47]));
    expect(fake.fileDownloads).toBe(1);

    // chat.update while streaming: at least one partial text, never two updates of one message within a second.
    const updates = fake.calls.filter((c) => c.method === 'chat.update' && c.args.ts === placeholder!.ts);
    expect(updates.some((u) => String(u.args.text).endsWith('▌'))).toBe(true);
    for (let i = 1; i < updates.length; i++) expect(updates[i]!.at - updates[i - 1]!.at).toBeGreaterThanOrEqual(990);

    // A reply in the thread, without a mention or a file, continues with the stored image.
    send({ type: 'message', channel_type: 'channel', user: 'U0ALICE', text: 'where is it?', ts: fake.ts(), thread_ts: thread, channel: CHANNEL });
    const messages = await answered(thread, 2);
    const second = messages.filter((m) => m.blocks)[1]!;
    expect(second.blocks![0].text.text).toContain('(#2)');
    expect(fake.fileDownloads).toBe(1);
    const [a, b] = worker.jobs.slice(-2);
    expect(b!.conversationId).toBe(a!.conversationId);
  });

  it('answers DMs without a mention, and leaves threads it has no conversation in alone', async () => {
    const dm = 'DFAKE0001';
    const ts = fake.ts();
    const file = fake.file('scene.png', png, 'image/png', { width: 64, height: 48 });
    send({ type: 'message', channel_type: 'im', user: 'U0HEIDI', text: 'what is this?', ts, channel: dm, files: [file], subtype: 'file_share' });
    const [answer] = await answered(ts);
    expect(answer!.channel).toBe(dm);
    expect(answer!.blocks![0].text.text).toContain('(#1)');
    // A later top-level DM without a file continues that conversation, in its thread.
    send({ type: 'message', channel_type: 'im', user: 'U0HEIDI', text: 'and the colour?', ts: fake.ts(), channel: dm });
    const messages = await answered(ts, 2);
    expect(messages.filter((m) => m.blocks)[1]!.blocks![0].text.text).toContain('(#2)');

    const callsBefore = fake.calls.length;
    const { response } = send({ type: 'message', channel_type: 'channel', user: 'U0HEIDI', text: 'unrelated', ts: fake.ts(), thread_ts: fake.ts(), channel: CHANNEL });
    expect((await response).status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(fake.calls.length).toBe(callsBefore);
  });

  it('retries a 5xx with backoff', async () => {
    fake.fail('chat.update', 500);
    const file = fake.file('scene.png', png, 'image/png', { width: 64, height: 48 });
    const event = mention('U0IVAN', 'hello', [file]);
    send(event);
    const [answer] = await answered(String(event.ts));
    expect(answer!.blocks![0].text.text).toContain('(#1)');
    const updates = fake.calls.filter((c) => c.method === 'chat.update' && c.args.ts === answer!.ts);
    const failed = updates.findIndex((c) => c.status === 500);
    expect(failed).toBeGreaterThanOrEqual(0);
    expect(updates[failed + 1]!.at - updates[failed]!.at).toBeGreaterThanOrEqual(500); // retryConfig: 1 s, randomised x1-2
  });

  it('runs a redelivered event (X-Slack-Retry-Num) once', async () => {
    const file = fake.file('scene.png', png, 'image/png', { width: 64, height: 48 });
    const event = mention('U0BOB', 'segment the red circle', [file]);
    const { envelope, response } = send(event);
    await response;
    const retry = await postSigned(eventsUrl, JSON.stringify(envelope), { retryNum: 1 });
    expect(retry.status).toBe(200);
    await answered(String(event.ts));
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(inThread(String(event.ts)).filter((m) => m.text.startsWith('⏳') || m.blocks)).toHaveLength(1);
  });

  it('refuses a bad signature and a stale timestamp', async () => {
    const callsBefore = fake.calls.length;
    const event = mention('U0EVE', 'hello');
    const bad = await postSigned(eventsUrl, JSON.stringify(fake.envelope(event)), { secret: 'not-the-secret' });
    expect(bad.status).toBe(401);
    const stale = await postSigned(eventsUrl, JSON.stringify(fake.envelope(event)), { timestamp: Math.floor(Date.now() / 1000) - 600 });
    expect(stale.status).toBe(401);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(fake.calls.length).toBe(callsBefore);
  });

  it('gives clear replies for a non-image, an oversized file and a file it may not read', async () => {
    const cases = [
      { file: fake.file('notes.txt', new TextEncoder().encode('hello'), 'text/plain'), expected: /not a supported image/ },
      { file: fake.file('huge.png', png, 'image/png', { size: MAX_IMAGE_BYTES + 1 }), expected: /too large/ },
      { file: fake.file('private.png', png, 'image/png', { denied: true }), expected: /could not be downloaded/ },
    ];
    const downloadsBefore = fake.fileDownloads;
    for (const { file, expected } of cases) {
      const event = mention('U0CAROL', 'what is this?', [file]);
      send(event);
      const reply = await fake.until(() => inThread(String(event.ts))[0]);
      expect(reply.text).toMatch(/^⚠️/);
      expect(reply.text).toMatch(expected);
    }
    expect(fake.fileDownloads).toBe(downloadsBefore + 1); // only the permitted-size image was fetched
  });

  it('answers a rate-limited user privately with "try again in N s"', async () => {
    for (let i = 0; i < 6; i++) send(mention('U0DAVE', `question ${i}`));
    const notice = await fake.until(() => fake.calls.find((c) => c.method === 'chat.postEphemeral' && c.args.user === 'U0DAVE'));
    expect(notice.args.text).toMatch(/try again in \d+ s/);
  });

  it('runs /omg on the latest conversation and acknowledges at once', async () => {
    const file = fake.file('scene.png', png, 'image/png', { width: 64, height: 48 });
    const event = mention('U0FRANK', 'hello', [file]);
    send(event);
    await answered(String(event.ts));
    const response = await postSigned(eventsUrl, slashCommandBody('/omg', 'regions', 'U0FRANK'), { contentType: 'application/x-www-form-urlencoded' });
    expect(response.status).toBe(200);
    const messages = await answered(String(event.ts), 2);
    const regions = messages.filter((m) => m.blocks).at(-1)!;
    expect(regions.blocks!.find((b: { type: string }) => b.type === 'context').elements[0].text).toBe('🟦 #2 left half   🟩 #3 right half');
    expect(worker.jobs.at(-1)!.task).toBe('everything');

    const usage = await postSigned(eventsUrl, slashCommandBody('/omg', 'dance', 'U0FRANK'), { contentType: 'application/x-www-form-urlencoded' });
    expect(await usage.json()).toMatchObject({ response_type: 'ephemeral', text: expect.stringMatching(/^Usage: \/omg ask/) });
    const bad = await postSigned(eventsUrl, slashCommandBody('/omg', 'describe the dog', 'U0FRANK'), { contentType: 'application/x-www-form-urlencoded' });
    expect(await bad.json()).toMatchObject({ response_type: 'ephemeral', text: expect.stringMatching(/^⚠️ Describe needs a region: #n/) });
    const stranger = await postSigned(eventsUrl, slashCommandBody('/omg', 'caption', 'U0NOBODY'), { contentType: 'application/x-www-form-urlencoded' });
    expect(await stranger.json()).toMatchObject({ response_type: 'ephemeral', text: expect.stringMatching(/^Mention me with an image first/) });
  });

  it('waits for Retry-After on a 429 before posting', async () => {
    fake.fail('chat.postMessage', 429, { retryAfter: 1 });
    const file = fake.file('scene.png', png, 'image/png', { width: 64, height: 48 });
    const event = mention('U0GRACE', 'hello', [file]);
    send(event);
    await answered(String(event.ts));
    const posts = fake.calls.filter((c) => c.method === 'chat.postMessage' && c.args.thread_ts === String(event.ts));
    expect(posts.map((c) => c.status)).toEqual([429, 200]);
    expect(posts[1]!.at - posts[0]!.at).toBeGreaterThanOrEqual(1000);
  });

  it('works over Socket Mode when SLACK_APP_TOKEN is set, acknowledging each envelope', async () => {
    const socketConfig = config({ SLACK_APP_TOKEN: APP_TOKEN });
    const socketBot = await startSlack({ config: socketConfig, service: testService().service, log: createLogger(socketConfig) });
    try {
      expect(socketBot?.port).toBeNull();
      await fake.socketConnected();
      const file = fake.file('scene.png', png, 'image/png', { width: 64, height: 48 });
      const event = mention('U0JUDY', 'what is this?', [file]);
      const envelopeId = fake.pushEvent(fake.envelope(event));
      const [answer] = await answered(String(event.ts));
      expect(answer!.blocks![0].text.text).toContain('🟧 *a red circle* (#1)');
      expect(fake.acks).toContain(envelopeId);
    } finally {
      await socketBot?.stop();
    }
  });

  it('reports a refused token once and does not start', async () => {
    const lines: string[] = [];
    const log = createLogger(config({ LOG_LEVEL: 'info' }), { write: (line: string) => void lines.push(line) });
    const refused = await startSlack({ config: config({ SLACK_BOT_TOKEN: 'xoxb-revoked', SLACK_PORT: String(await freePort()) }), service, log });
    expect(refused).toBeNull();
    const errors = lines.filter((l) => JSON.parse(l).level >= 50);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toContain('SLACK_BOT_TOKEN was refused');
  });
});
