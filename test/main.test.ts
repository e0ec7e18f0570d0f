// `npm start` as a process: with a broken model bundle it says so once, keeps serving, and fails turns with the
// bundle's message instead of crashing in a loop; SIGTERM shuts it down cleanly; with nothing to serve it exits.
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, startApp, type RunningApp } from './e2e/app.js';
import { scenePng } from './e2e/scene.js';

describe('main with a missing model bundle', () => {
  let app: RunningApp;
  let emptyDir: string;
  let opsUrl: string;

  beforeAll(async () => {
    emptyDir = await mkdtemp(join(tmpdir(), 'omg-no-bundle-'));
    const metricsPort = await freePort();
    opsUrl = `http://127.0.0.1:${metricsPort}`;
    app = await startApp({ MODEL_DIR: emptyDir, METRICS_PORT: String(metricsPort) });
  }, 120_000);
  afterAll(async () => {
    await app?.stop();
    await rm(emptyDir, { recursive: true, force: true });
  });

  it('reports the problem on /healthz and in every turn, and keeps running', async () => {
    // With METRICS_PORT set, the operations endpoints live there and not on the playground port.
    expect((await fetch(`${app.url}/metrics`)).status).toBe(404);
    expect(await (await fetch(`${opsUrl}/metrics`)).text()).toMatch(/^# TYPE omg_queue_depth gauge$/m);
    const health = await fetch(`${opsUrl}/healthz`);
    expect(health.status).toBe(503);
    expect(await health.json()).toMatchObject({ ok: false, model: expect.stringMatching(/model bundle is invalid: manifest\.json is missing/) });

    const form = new FormData();
    form.append('image', new Blob([new Uint8Array(await scenePng())], { type: 'image/png' }), 'scene.png');
    const { id } = (await (await fetch(`${app.url}/api/conversations`, { method: 'POST', body: form })).json()) as { id: string };
    const ask = await fetch(`${app.url}/api/conversations/${id}/ask`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ text: 'What is this?' }),
    });
    expect(ask.status).toBe(503);
    expect(((await ask.json()) as { error: { code: string } }).error.code).toBe('OMG_ERR_BUNDLE_INVALID');

    expect(app.output().match(/model not loaded/g)).toHaveLength(1);
    expect(app.process.exitCode).toBeNull();
  });

  it('exits cleanly on SIGTERM', async () => {
    await app.stop();
    expect(app.process.exitCode).toBe(0);
  });
});

describe('main with nothing to serve', () => {
  it('says so once and exits 1 instead of idling', () => {
    const tsxCli = createRequire(import.meta.url).resolve('tsx/cli');
    const run = spawnSync(process.execPath, [tsxCli, 'src/main.ts'], {
      encoding: 'utf8', timeout: 90_000,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', WEB_ENABLED: 'false', MODEL_DIR: 'no-such-bundle', REDIS_URL: '', DISCORD_TOKEN: '', SLACK_BOT_TOKEN: '' },
    });
    expect(run.status).toBe(1);
    expect(run.stdout.match(/nothing to serve/g)).toHaveLength(1);
  });
});
