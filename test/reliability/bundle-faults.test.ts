// A missing or corrupt model bundle at start-up, in each way a process loads one: the service core (`npm start`,
// which test/main.test.ts also runs as a process with a missing bundle), `npm run worker` and the CLI. Each must say
// what is wrong in one clear line; the service keeps running and fails turns with that message, the worker stays up
// unhealthy without taking jobs, and the CLI exits once with a non-zero code (no stack trace, no retry loop).
import { createHash } from 'node:crypto';
import { cp, mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { OmgError } from '../../src/errors.js';
import { createLogger } from '../../src/log.js';
import { createCore } from '../../src/main.js';
import { createMetrics } from '../../src/metrics.js';
import { redisTestUrl } from '../helpers/redis.js';
import { freePort, startEntry, stop, tinyBundle } from './processes.js';

let dir: string;

/** Ways to break a copy of the tiny bundle, and what the message must name. */
const breakages: { name: string; make: (bundle: string) => Promise<void>; message: RegExp }[] = [
  { name: 'missing directory', make: (b) => rm(b, { recursive: true }), message: /manifest\.json is missing/ },
  { name: 'manifest is not JSON', make: (b) => writeFile(join(b, 'manifest.json'), '{ not json'), message: /manifest/ },
  { name: 'graph truncated (size and hash differ)', make: (b) => truncate(join(b, 'vision.onnx'), 1000), message: /vision\.onnx/ },
  {
    name: 'graph garbage with a matching manifest entry',
    make: async (b) => {
      const garbage = Buffer.from('this is not an onnx model');
      await writeFile(join(b, 'llm.onnx'), garbage);
      const manifest = JSON.parse(await readFile(join(b, 'manifest.json'), 'utf8'));
      manifest.files['llm.onnx'] = { ...manifest.files['llm.onnx'], bytes: garbage.length, sha256: createHash('sha256').update(garbage).digest('hex') };
      await writeFile(join(b, 'manifest.json'), JSON.stringify(manifest));
    },
    message: /llm/,
  },
];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'omg-bundles-'));
  for (const [i, b] of breakages.entries()) {
    await cp(tinyBundle, join(dir, String(i)), { recursive: true });
    await b.make(join(dir, String(i)));
  }
});
afterAll(() => rm(dir, { recursive: true, force: true }));

const noStack = (text: string) => expect(text).not.toMatch(/\n\s+at .*:\d+:\d+/);

describe('a broken model bundle at start-up', () => {
  breakages.forEach((b, i) => {
    describe(b.name, () => {
      it('the service core keeps running, reports it, and fails turns with the message', async () => {
        const config = loadConfig({ LOG_LEVEL: 'silent', MODEL_DIR: join(dir, String(i)), WEB_ENABLED: 'false' });
        const core = await createCore(config, createLogger(config), createMetrics());
        try {
          expect(core.modelError?.code).toMatch(/^OMG_ERR_BUNDLE_(INVALID|LOAD)$/);
          expect(core.modelError!.userMessage).toMatch(b.message);
          expect(await core.health()).toMatchObject({ ok: false, model: core.modelError!.userMessage });
          const png = new Uint8Array(await readFile(join(tinyBundle, 'golden-image.png')));
          const turn = core.service.submit({ platform: 'web', channel: 'c', thread: 't', eventId: 'e', userId: 'u', text: 'hi', image: { bytes: png } });
          await expect(turn).rejects.toBeInstanceOf(OmgError);
          await expect(turn).rejects.toMatchObject({ code: core.modelError!.code });
        } finally {
          await core.close();
        }
      });

      it('the CLI exits with code 4 and the message', async () => {
        const cli = startEntry('src/bots/cli/main.ts', {}, ['ask', join(tinyBundle, 'golden-image.png'), 'what is this?', '--model', join(dir, String(i))]);
        expect(await cli.exited).toBe(4);
        expect(cli.output()).toMatch(b.message);
        noStack(cli.output());
      });
    });
  });

  it('npm run worker logs the reason once and stays up unhealthy, taking no jobs (no crash loop), until stopped', async () => {
    const url = new URL(redisTestUrl);
    url.pathname = '/12';
    const port = await freePort();
    const worker = startEntry('src/queue/worker-main.ts',
      { REDIS_URL: url.toString(), MODEL_DIR: join(dir, '2'), LOG_LEVEL: 'info', METRICS_PORT: String(port) });
    await worker.waitFor('could not load the model');
    const health = await fetch(`http://127.0.0.1:${port}/healthz`);
    expect(health.status).toBe(503);
    expect(JSON.stringify(await health.json())).toMatch(/vision\.onnx/);
    expect(worker.process.exitCode).toBeNull();
    await stop(worker);
    expect(await worker.exited).toBe(0);
    expect(worker.output().match(/could not load the model/g)).toHaveLength(1);
    expect(worker.output()).not.toContain('worker ready');
  });
});
