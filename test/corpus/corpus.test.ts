// Every corpus case through the intake the adapters use (TurnService.submit on the in-process queue with the
// tiny-random bundle, wired by createCore like `npm start`), through the playground's HTTP API (its own upload
// path) and through the CLI's steps (argv parsing, input checks, runAsk on the same core), then a good request to
// show that the process keeps serving. A few cases also run the real CLI process, to show that the steps above
// are the ones its entry point takes.
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseArgs, UsageError } from '../../src/bots/cli/args.js';
import { readInputs, runAsk } from '../../src/bots/cli/ask.js';
import { exitCodeFor, exitCodes } from '../../src/bots/cli/exit-codes.js';
import { buildWebServer } from '../../src/bots/web/server.js';
import { loadConfig } from '../../src/config.js';
import type { SubmitInput, TurnReply } from '../../src/conversation/service.js';
import { OmgError, toOmgError } from '../../src/errors.js';
import { createLogger } from '../../src/log.js';
import { createCore, type Core } from '../../src/main.js';
import { createMetrics } from '../../src/metrics.js';
import { corpus, MAX_IMAGE_BYTES, SCENE, type CorpusCase, type CorpusFile } from './cases.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const tiny = fileURLToPath(new URL('../fixtures/tiny-random', import.meta.url));
const MiB = 1024 * 1024;
const config = loadConfig({ LOG_LEVEL: 'silent', MODEL_DIR: tiny, ORT_THREADS: '1', WEB_ENABLED: 'false', MAX_IMAGE_BYTES: String(MAX_IMAGE_BYTES) });
const limits = { maxBytes: config.MAX_IMAGE_BYTES, maxPixels: config.MAX_IMAGE_PIXELS };
// What a user could type that the model would read as control tokens.
const CONTROL_STRINGS = ['[SEG]', '<image>', '<|im_end|>', '<|im_start|>', '<p>', '</p>', '<region>', '<mark>', '<s>', '</s>'];

let core: Core;
let web: FastifyInstance;
let dir: string;
let scene: Uint8Array;
let seq = 0;

beforeAll(async () => {
  core = await createCore(config, createLogger(config), createMetrics());
  expect(core.modelError).toBeNull();
  web = await buildWebServer({ service: core.service, limits });
  dir = await mkdtemp(join(tmpdir(), 'omg-corpus-'));
  scene = await SCENE.bytes();
});
afterAll(async () => {
  await web?.close();
  await core?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const message = (thread: string, text: string, extra: Partial<SubmitInput> = {}): SubmitInput => ({
  platform: 'web', channel: 'corpus', thread, eventId: `e${++seq}`, userId: 'u1', text, ...extra,
});

/** A conversation on the scene with masks #1 and #2 (the tiny bundle answers every turn with one mask). */
async function twoMasks(thread: string): Promise<void> {
  const first = await core.service.submit(message(thread, 'segment the red circle', { image: { bytes: scene, name: 'scene.png' } }));
  const second = await core.service.submit(message(thread, 'segment the red circle'));
  expect([...first.segments, ...second.segments].map((s) => s.n)).toEqual([1, 2]);
}

/** A good request in a fresh thread: the process still serves after the case. */
async function stillServes(): Promise<void> {
  const reply = await core.service.submit(message(`good-${++seq}`, 'segment the red circle', { image: { bytes: scene, name: 'scene.png' } }));
  expect(reply.segments).toHaveLength(1);
}

async function outcomeOf(run: Promise<TurnReply>): Promise<TurnReply | OmgError> {
  return run.catch((err: unknown) => {
    expect(err).toBeInstanceOf(OmgError); // submit promises OmgError for every failure
    return err as OmgError;
  });
}

async function throughService(c: CorpusCase): Promise<void> {
  const thread = `case-${c.id}-${++seq}`;
  if (c.conversation === 'two-masks') await twoMasks(thread);
  const file = c.conversation ? undefined : (c.file ?? SCENE);
  const bytes = file ? await file.bytes() : undefined;
  const rssBefore = process.memoryUsage().rss;
  const image = file && bytes ? { image: { bytes, name: file.name, ...(file.mime ? { mime: file.mime } : {}) } } : {};
  const outcome = await outcomeOf(core.service.submit(message(thread, c.text, { ...image, ...(c.prompts ? { prompts: c.prompts } : {}) })));
  if (c.check === 'boundedMemory') expect(process.memoryUsage().rss - rssBefore).toBeLessThan(64 * MiB);

  if (c.expect === 'answer') {
    if (outcome instanceof OmgError) throw new Error(`expected an answer, got ${outcome.code}: ${outcome.userMessage}`);
    // Segment-everything answers with its regions' labels, or that it found none (on a 1x1 image); a chat turn always
    // has text.
    const labels = outcome.segments.map((s) => s.label).join(', ');
    if (c.text === 'segment everything') expect(outcome.text).toBe(labels || 'No objects were found in the image.');
    else expect(outcome.text.length).toBeGreaterThan(0);
    const conversation = (await core.service.conversation('web', 'corpus', thread))!;
    if (c.size) expect([conversation.image.width, conversation.image.height]).toEqual(c.size);
    if (c.check === 'noControlTokens') {
      const modelText = conversation.turns.at(-1)!.text;
      for (const token of CONTROL_STRINGS) expect(modelText).not.toContain(token);
    }
    if (c.check === 'firstFrameRed') {
      const stored = (await core.service.blob(conversation.image.hash))!;
      const { data } = await sharp(stored).raw().toBuffer({ resolveWithObject: true });
      expect([data[0]! > 200, data[2]! < 50]).toEqual([true, true]);
    }
  } else {
    if (!(outcome instanceof OmgError)) throw new Error(`expected ${c.expect}, got an answer: ${outcome.text}`);
    expect(outcome.code).toBe(c.expect);
    if (c.message) expect(outcome.userMessage).toMatch(c.message);
    // A message for a chat: no stack trace, no file path, no internals.
    expect(outcome.userMessage).not.toMatch(/\n\s+at |node_modules|\/src\/|undefined|\[object/);
  }
  await stillServes();
}

/** The playground: upload (multipart, as the page sends it), then ask; the HTTP status and body of the last step. */
async function throughWeb(c: CorpusCase): Promise<{ status: number; body: { text?: string; error?: { code: string; message: string } } }> {
  const upload = async (file: CorpusFile) => {
    const form = new FormData();
    form.append('image', new Blob([Buffer.from(await file.bytes())], { type: file.mime ?? 'application/octet-stream' }), file.name);
    return web.inject({ method: 'POST', url: '/api/conversations', payload: form });
  };
  const ask = (id: string, text: string, prompts: unknown[] = []) =>
    web.inject({ method: 'POST', url: `/api/conversations/${id}/ask`, payload: { text, prompts } });
  let id: string = randomUUID();
  if (c.conversation !== 'new-thread') {
    const uploaded = await upload(c.conversation ? SCENE : (c.file ?? SCENE));
    if (uploaded.statusCode !== 201) return { status: uploaded.statusCode, body: uploaded.json() };
    id = uploaded.json<{ id: string }>().id;
  }
  if (c.conversation === 'two-masks') for (let i = 0; i < 2; i++) expect((await ask(id, 'segment the red circle')).statusCode).toBe(200);
  const res = await ask(id, c.text, c.prompts ?? []);
  return { status: res.statusCode, body: res.json() };
}

async function webStillServes(): Promise<void> {
  const form = new FormData();
  form.append('image', new Blob([Buffer.from(scene)], { type: 'image/png' }), 'scene.png');
  const { id } = (await web.inject({ method: 'POST', url: '/api/conversations', payload: form })).json<{ id: string }>();
  const res = await web.inject({ method: 'POST', url: `/api/conversations/${id}/ask`, payload: { text: 'segment the red circle' } });
  expect(res.statusCode).toBe(200);
}

const expectedExit = (c: CorpusCase) => c.cli?.exit ?? (c.expect === 'answer' ? exitCodes.ok : exitCodeFor(c.expect));
/** The case's message pattern, where the CLI refuses for the same reason as the service (not its own usage check). */
const cliMessage = (c: CorpusCase) =>
  c.expect !== 'answer' && expectedExit(c) === exitCodeFor(c.expect) ? (c.cli?.message ?? c.message) : undefined;

async function writeCaseFiles(c: CorpusCase): Promise<{ image: string; mask?: string }> {
  const file = c.conversation ? SCENE : (c.file ?? SCENE);
  const caseDir = join(dir, c.id);
  await mkdir(caseDir, { recursive: true });
  const image = join(caseDir, file.name);
  await writeFile(image, await file.bytes());
  if (!c.cli?.mask) return { image };
  const mask = join(caseDir, 'mask.png');
  await writeFile(mask, await c.cli.mask());
  return { image, mask };
}

const argvOf = (c: CorpusCase, files: { image: string; mask?: string }) => [
  'ask', files.image, c.text, ...(c.cli?.args ?? []), ...(files.mask ? ['--mask', files.mask] : []),
];

/** The steps of the CLI's entry point (src/bots/cli/main.ts) on the shared core: its exit code and stderr. */
async function throughCliSteps(argv: string[]): Promise<{ exit: number; stderr: string; stdout: string }> {
  let stdout = '';
  let stderr = '';
  const io = { stdout: (t: string) => void (stdout += t), stderr: (t: string) => void (stderr += t), streamText: false };
  try {
    const args = parseArgs(argv);
    if (args.command !== 'ask') throw new Error('the corpus only asks');
    const inputs = await readInputs(args, limits);
    await runAsk(args, inputs, core.service, io);
    return { exit: exitCodes.ok, stderr, stdout };
  } catch (err) {
    if (err instanceof UsageError) return { exit: exitCodes.usage, stderr: err.message, stdout };
    const error = toOmgError(err);
    return { exit: exitCodeFor(error.code), stderr: error.userMessage, stdout };
  }
}

describe('bad-input corpus', () => {
  it('has at least 60 cases with unique ids, all in the README table', async () => {
    expect(corpus.length).toBeGreaterThanOrEqual(60);
    expect(new Set(corpus.map((c) => c.id)).size).toBe(corpus.length);
    const readme = await readFile(new URL('./README.md', import.meta.url), 'utf8');
    for (const c of corpus) expect(readme).toContain(`| \`${c.id}\` |`);
  });

  describe('through TurnService.submit (the adapters\' intake)', () => {
    for (const c of corpus) it(`${c.id}: ${c.expect}`, () => throughService(c));
  });

  describe('through the playground API', () => {
    for (const c of corpus) {
      const expected = c.web ?? c.expect;
      it(`${c.id}: ${expected}`, async () => {
        const { status, body } = await throughWeb(c);
        if (expected === 'answer') {
          expect(status, JSON.stringify(body)).toBe(200);
        } else {
          expect(status).toBeGreaterThanOrEqual(400);
          expect(status).toBeLessThan(500);
          expect(body.error?.code).toBe(expected);
          expect(body.error?.message).not.toMatch(/\n\s+at |node_modules|\/src\/|undefined|\[object/);
        }
        await webStillServes();
      });
    }
  });

  describe('through the CLI steps', () => {
    for (const c of corpus) {
      it(`${c.id}: exit ${expectedExit(c)}`, async () => {
        const { exit, stderr, stdout } = await throughCliSteps(argvOf(c, await writeCaseFiles(c)));
        expect(exit, stderr).toBe(expectedExit(c));
        if (exit === exitCodes.ok) expect(stdout.length).toBeGreaterThan(0);
        else if (cliMessage(c)) expect(stderr).toMatch(cliMessage(c)!);
        await stillServes();
      });
    }
  });

  // The real process: refusals before the model loads, a usage error, and one answered turn with the tiny bundle.
  describe('through the CLI process', () => {
    const byId = (id: string) => corpus.find((c) => c.id === id)!;
    for (const id of ['pdf-named-png', 'bomb-png-1bit', 'click-nan', 'animated-gif']) {
      it(`${id}: exit ${expectedExit(byId(id))}`, async () => {
        const c = byId(id);
        const argv = [...argvOf(c, await writeCaseFiles(c)), '--model', tiny];
        const child = spawn(process.execPath, ['--import', 'tsx', 'src/bots/cli/main.ts', ...argv], {
          cwd: root, env: { ...process.env, MAX_IMAGE_BYTES: String(MAX_IMAGE_BYTES), ORT_THREADS: '1' }, stdio: ['ignore', 'pipe', 'pipe'],
        });
        let stderr = '';
        child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
        const exit = await new Promise<number | null>((resolve) => child.once('exit', resolve));
        expect(exit).toBe(expectedExit(c));
        if (cliMessage(c)) expect(stderr).toMatch(cliMessage(c)!);
        expect(stderr).not.toMatch(/\n\s+at /);
      });
    }
  });
});
