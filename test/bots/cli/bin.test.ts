// The installed command as a process: exit codes and messages for the mistakes a person makes first.
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exitCodes } from '../../../src/bots/cli/exit-codes.js';
import { scenePng } from '../../e2e/scene.js';

const bin = fileURLToPath(new URL('../../../bin/omg-llava-bot.js', import.meta.url));
let dir: string;

// Runs in a scratch directory (as `npx omg-llava-bot` would from anywhere), with no .env and no service settings.
function cli(...args: string[]) {
  const run = spawnSync(process.execPath, [bin, ...args], { cwd: dir, encoding: 'utf8', env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' }, timeout: 120_000 });
  return { code: run.status, stdout: run.stdout, stderr: run.stderr };
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'omg-cli-bin-'));
  await writeFile(join(dir, 'scene.png'), await scenePng());
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('omg-llava-bot', () => {
  it('prints usage with --help and exits 0', () => {
    const run = cli('--help');
    expect(run.code).toBe(exitCodes.ok);
    expect(run.stdout).toMatch(/^Usage: omg-llava-bot ask IMAGE "QUESTION"/);
  });

  it('exits 2 on a usage error, with the reason', () => {
    const run = cli('ask', 'scene.png', '--point', '12');
    expect(run.code).toBe(exitCodes.usage);
    expect(run.stderr).toMatch(/--point expects x,y/);
  });

  it('exits 3 when the image cannot be read, before loading any model', () => {
    const run = cli('ask', 'missing.png', 'What is this?', '--model', 'no-such-bundle');
    expect(run.code).toBe(exitCodes.badInput);
    expect(run.stderr).toMatch(/Cannot read IMAGE "missing\.png": no such file/);
    expect(run.stderr).not.toMatch(/loading model/);
  });

  it('exits 4 with the bundle problem when the model directory is not a bundle', () => {
    const run = cli('ask', 'scene.png', 'What is this?', '--model', 'no-such-bundle');
    expect(run.code).toBe(exitCodes.model);
    expect(run.stderr).toMatch(/model bundle is invalid: manifest\.json is missing/);
  });
});
