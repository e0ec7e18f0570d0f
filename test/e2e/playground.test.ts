// The playground driven as a person would: headless Chromium uploads a scene, clicks and drags prompts, asks for the
// red circle and gets an overlay whose mask matches the circle. The mask check needs the trained nano bundle.
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { startApp, type RunningApp } from './app.js';
import { circleTruth, iou, maskFromPng, scene, scenePng } from './scene.js';

const MODEL_DIR = 'models/omg-llava-nano';
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const CHROMIUM_FLAGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
  '--disable-sync', '--no-first-run',
];
const QUESTION = 'Please segment the red circle in this image.';

describe.skipIf(!existsSync(join(MODEL_DIR, 'manifest.json')))('playground in Chromium (nano bundle)', () => {
  let app: RunningApp;
  let profile: string;
  let browser: BrowserContext;
  let page: Page;

  beforeAll(async () => {
    app = await startApp({ MODEL_DIR });
    profile = await mkdtemp(join(tmpdir(), 'omg-e2e-chromium-'));
    browser = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_FLAGS });
    page = browser.pages()[0] ?? (await browser.newPage());
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await app?.stop();
    if (profile) await rm(profile, { recursive: true, force: true });
  });

  it('uploads an image and turns a click into a point and a drag into a box, in image pixels', async () => {
    await page.goto(app.url);
    expect(await page.locator('#prompt-bar').isVisible()).toBe(false);
    await page.setInputFiles('#image-input', { name: 'scene.png', mimeType: 'image/png', buffer: await scenePng() });
    await expect.poll(() => page.locator('#status').textContent()).toBe(`Image ready (${scene.width}×${scene.height}).`);
    expect(await page.locator('#overlay').isVisible()).toBe(false); // no answer yet: no broken image over the photo

    // Screen positions of image pixels: the photo may be shown scaled.
    const box = (await page.locator('#photo').boundingBox())!;
    const at = (x: number, y: number) => ({ x: box.x + ((x + 0.5) / scene.width) * box.width, y: box.y + ((y + 0.5) / scene.height) * box.height });
    const centre = at(scene.circle.cx, scene.circle.cy);
    await page.mouse.click(centre.x, centre.y);
    const from = at(40, 50);
    const to = at(180, 190);
    await page.mouse.move(from.x, from.y);
    await page.mouse.down();
    await page.mouse.move(to.x, to.y, { steps: 5 });
    await page.mouse.up();

    const chips = await page.locator('#prompt-list .prompt-chip').allTextContents();
    expect(chips).toHaveLength(2);
    const [, px, py] = chips[0]!.match(/^1: point \((\d+), (\d+)\)$/)!.map(Number);
    expect(Math.abs(px! - scene.circle.cx)).toBeLessThanOrEqual(1);
    expect(Math.abs(py! - scene.circle.cy)).toBeLessThanOrEqual(1);
    const [, x1, y1, x2, y2] = chips[1]!.match(/^2: box (\d+),(\d+),(\d+),(\d+)$/)!.map(Number);
    for (const [got, want] of [[x1, 40], [y1, 50], [x2, 181], [y2, 191]] as const) expect(Math.abs(got! - want)).toBeLessThanOrEqual(1);
    expect(await page.locator('#marks circle').count()).toBe(1);
    expect(await page.locator('#marks rect').count()).toBe(1);

    await page.click('#clear-prompts');
    expect(await page.locator('#prompt-list .prompt-chip').count()).toBe(0);
  });

  it('asks for the red circle and shows an overlay whose mask matches it', async () => {
    await page.fill('#question', QUESTION);
    await page.click('#ask-button');
    const answer = page.locator('#turns li .answer[data-done="true"]');
    await answer.waitFor({ timeout: 150_000 });
    expect(await page.locator('#turns .answer.failed').count()).toBe(0);

    // The overlay is shown over the photo, at the image's own size.
    const overlay = page.locator('#overlay');
    await expect.poll(() => overlay.evaluate((img: HTMLImageElement) => img.complete && !img.hidden && img.naturalWidth)).toBe(scene.width);
    expect(await overlay.evaluate((img: HTMLImageElement) => img.naturalHeight)).toBe(scene.height);

    // Each segment links its mask; the best one must be the circle.
    const maskUrls = await page.locator('#turns .segments a').evaluateAll((links) => links.map((a) => (a as HTMLAnchorElement).href));
    expect(maskUrls.length).toBeGreaterThan(0);
    const truth = circleTruth();
    let best = 0;
    for (const url of maskUrls) {
      const res = await page.request.get(url);
      expect(res.headers()['content-type']).toBe('image/png');
      best = Math.max(best, iou(await maskFromPng(await res.body()), truth));
    }
    expect(best).toBeGreaterThanOrEqual(0.8);
  }, 180_000);
});
