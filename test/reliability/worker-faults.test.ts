// Worker faults on a real Redis, seen from a Discord channel: the fake Discord, the real adapter over createCore
// (BullMQ queue, as `npm start` with REDIS_URL) and model workers as separate processes (fixtures/model-worker.ts,
// the real processor on the tiny-random bundle with a short lock).
// 1. A job over its time budget is stopped and the user is told.
// 2. A worker SIGKILLed in the middle of a turn: another worker takes the job over and the user sees one answer.
// 3. A job whose worker dies twice (a poison job) fails with a message; the next worker does not run it again.
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDiscord, type DiscordBot } from '../../src/bots/discord/index.js';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { createCore, type Core } from '../../src/main.js';
import { createMetrics } from '../../src/metrics.js';
import { jobIdFor } from '../../src/queue/job.js';
import { BOT_ID, FakeDiscord, user } from '../fakes/discord.js';
import { redisTestUrl } from '../helpers/redis.js';
import { flush, startModelWorker, stop, type Child } from './processes.js';

// Its own database: the service and the workers use the production key prefix.
const url = new URL(redisTestUrl);
url.pathname = '/11';
const REDIS_URL = url.toString();
const alice = user('700000000000000001', 'alice');

let fake: FakeDiscord;
let core: Core;
let bot: DiscordBot;
let png: Uint8Array;
const workers: Child[] = [];

beforeAll(async () => {
  await flush(REDIS_URL);
  png = new Uint8Array(await readFile('test/fixtures/tiny-random/golden-image.png'));
  fake = await FakeDiscord.start();
  const config = loadConfig({
    LOG_LEVEL: 'silent', REDIS_URL, WEB_ENABLED: 'false', JOB_ATTEMPTS: '3',
    DISCORD_TOKEN: 'fake-token', DISCORD_APPLICATION_ID: BOT_ID, DISCORD_API_URL: fake.apiUrl, DISCORD_CDN_HOSTS: fake.cdnHost,
  });
  const log = createLogger(config);
  core = await createCore(config, log, createMetrics());
  const started = await startDiscord({ config, service: core.service, log });
  if (!started) throw new Error('the Discord bot did not start');
  bot = started;
});

afterAll(async () => {
  for (const w of workers) await stop(w, 'SIGKILL');
  await bot?.stop();
  await core?.close();
  await fake?.close();
  await flush(REDIS_URL);
});

const ask = (content: string) =>
  fake.sendMessage({ author: alice, content: `<@${BOT_ID}> ${content}`, mentionBot: true, attachments: [fake.attachment('golden.png', png, 'image/png', { width: 45, height: 30 })] });
const answers = (thread: string) => fake.botMessages(thread).filter((m) => m.attachments.length > 0);
const warnings = (thread: string) => fake.botMessages(thread).filter((m) => m.content.startsWith('⚠️'));

/** A model worker on this file's Redis, killed after the file whatever happens. */
async function worker(env: Record<string, string> = {}): Promise<Child> {
  const w = await startModelWorker({ REDIS_URL, LOG_LEVEL: 'warn', ...env });
  workers.push(w);
  return w;
}

/** SIGKILLs `w` once it has started the turn `jobId`. */
async function killMidTurn(w: Child, jobId: string): Promise<void> {
  await w.waitFor(`turn ${jobId}`, 30_000);
  w.process.kill('SIGKILL');
  await w.exited;
}

describe('worker faults (real Redis, separate worker processes)', () => {
  // One slow worker: each turn waits 5 s before the model runs, and the budget is 2 s.
  let slow: Child;

  it('stops a turn over its time budget and tells the user', async () => {
    slow = await worker({ TURN_DELAY_MS: '5000', JOB_TIMEOUT_MS: '2000' });
    const asked = ask('what is in the picture?');
    const [warning] = await fake.until(() => (warnings(asked.id).length > 0 ? warnings(asked.id) : undefined), 30_000);
    expect(warning.content).toMatch(/took too long and was stopped/);
    await sleep(1000); // nothing else arrives: not retried, no late answer
    expect(answers(asked.id)).toHaveLength(0);
    expect(slow.output()).toContain(`turn ${jobIdFor('discord', asked.id)}`);
  }, 120_000);

  it('a worker killed with SIGKILL mid-turn: another worker takes the job over and the user sees exactly one answer', async () => {
    const asked = ask('segment the red circle');
    const jobId = jobIdFor('discord', asked.id);
    await killMidTurn(slow, jobId);

    const rescuer = await worker();
    const [answer] = await fake.until(() => (answers(asked.id).length > 0 ? answers(asked.id) : undefined), 60_000);
    await sleep(2000); // time for a duplicate to show up, if there were one
    expect(answers(asked.id)).toEqual([answer]);
    expect(warnings(asked.id)).toHaveLength(0);
    expect(answer.content).toMatch(/Red circle/);
    expect(rescuer.output()).toContain(`turn ${jobId}`);
    await stop(rescuer);
  }, 120_000);

  // A poison job (say, an input that crashes the model runtime) must not take down every worker in turn forever.
  it('a job whose worker dies twice fails with a message instead of killing workers forever', async () => {
    const asked = ask('what is in the picture?');
    const jobId = jobIdFor('discord', asked.id);
    for (let i = 0; i < 2; i++) await killMidTurn(await worker({ TURN_DELAY_MS: '60000' }), jobId);
    const survivor = await worker();
    const [warning] = await fake.until(() => (warnings(asked.id).length > 0 ? warnings(asked.id) : undefined), 30_000);
    expect(warning.content).toMatch(/Something went wrong on our side\. Please try again\./);
    expect(answers(asked.id)).toHaveLength(0);
    expect(survivor.output()).not.toContain(`turn ${jobId}`);
    expect(survivor.process.exitCode).toBeNull();
  }, 120_000);
});
