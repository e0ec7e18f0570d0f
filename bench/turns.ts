// Parts 1–3 on the TypeScript side: where the time of a first turn goes, stage by stage, and what a follow-up costs
// with the image-feature and KV caches on and off. Each repetition uses a different image, so every first turn
// misses the image cache as a new upload would.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { downloadFile } from '../src/conversation/download.js';
import { acceptImage } from '../src/conversation/image.js';
import { OmgLlava, type Answer, type Chat } from '../src/inference/index.js';
import { renderOverlay } from '../src/render/overlay.js';
import { encode as rleEncode } from '../src/render/rle.js';
import type { Ask, BenchCase } from './cases.js';
import { summarize, summarizeStages, type Summary } from './stats.js';

export interface TurnOptions {
  bundle: string; threads: number; reps: number; warmup: number; maxNewTokens: number;
  images: Uint8Array[][]; // per case, one per repetition (warm-up included): every first turn sees a new image
  afterCase?: (k: number, result: CaseResult) => Promise<void>; // e.g. the PyTorch side of the same case, right after
}

export interface CaseResult {
  name: string;
  stages: Record<string, Summary>; // ms per stage of a first turn
  firstTurn: Summary; // conversation() + ask(): the model's part, what the PyTorch side is compared with
  service: Summary; // download .. encode: the whole turn as the service runs it, without the queue
  tokensPerSecond: Summary;
  tokens: number; masks: number;
  followUp: { cacheOn: Summary; cacheOff: Summary; ratioOn: number; ratioOff: number };
}

const LIMITS = { maxBytes: 25 * 1024 * 1024, maxPixels: 40_000_000 };

/** A loopback HTTP server that serves image i at /i, standing in for the platform's CDN. */
async function serveImages(images: Uint8Array[]): Promise<{ server: Server; url: (i: number) => string; host: string }> {
  const server = createServer((req, res) => {
    const body = images[Number(req.url?.slice(1))];
    if (!body) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': body.byteLength }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { server, host, url: (i) => `http://${host}/${i}` };
}

const generation = (maxNewTokens: number) => ({ maxNewTokens, doSample: false });

/** The overlay and the job result's encoding (RLE of every mask, JSON), as the worker produces them. */
async function renderAndEncode(image: Uint8Array, answer: Answer): Promise<{ render: number; encode: number }> {
  let t0 = performance.now();
  if (answer.segments.length) await renderOverlay(image, answer.segments.map((s, i) => ({ n: i + 1, mask: s.mask, phrase: s.phrase })));
  const render = performance.now() - t0;
  t0 = performance.now();
  JSON.stringify({ text: answer.text, segments: answer.segments.map((s) => ({ phrase: s.phrase, rle: rleEncode(s.mask) })) });
  return { render, encode: performance.now() - t0 };
}

async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const t0 = performance.now();
  const value = await fn();
  return [value, performance.now() - t0];
}

export async function benchTurns(cases: BenchCase[], o: TurnOptions): Promise<{ cases: CaseResult[]; provider: string }> {
  const cached = await OmgLlava.load(o.bundle, { provider: 'cpu', threads: o.threads });
  const uncached = await OmgLlava.load(o.bundle, { provider: 'cpu', threads: o.threads, imageCacheBytes: 0, kvCacheBytes: 0 });
  const { server, host, url } = await serveImages(o.images.flat());
  const ask = (chat: Chat, a: Ask) => chat.ask(a.text, { prompts: a.prompts, generation: generation(o.maxNewTokens) });
  const results: CaseResult[] = [];
  try {
    for (const [k, c] of cases.entries()) {
      const perCase = o.images[k]!.length;
      const runs: Record<string, number>[] = [];
      const first: number[] = [], service: number[] = [], tps: number[] = [], on: number[] = [], off: number[] = [];
      let tokens = 0, masks = 0;
      for (let i = 0; i < perCase; i++) {
        const tService = performance.now();
        const [downloaded, download] = await timed(() => downloadFile(url(k * perCase + i), { allowedHosts: [host], maxBytes: LIMITS.maxBytes }));
        const [accepted, intake] = await timed(() => acceptImage(downloaded.bytes, LIMITS));
        const [[chat, answer], firstTurn] = await timed(async () => {
          const chat = await cached.conversation(accepted.bytes);
          return [chat, await ask(chat, c.first)] as const;
        });
        const { render, encode } = await renderAndEncode(accepted.bytes, answer);
        const serviceMs = performance.now() - tService;
        const [, followOn] = await timed(() => ask(chat, c.followUp));
        chat.close();
        const chatOff = await uncached.conversation(accepted.bytes);
        await ask(chatOff, c.first);
        const [, followOff] = await timed(() => ask(chatOff, c.followUp));
        chatOff.close();
        if (i < o.warmup) continue;
        const { decodeTokens = 0, ...stages } = answer.timings;
        runs.push({ download, intake, ...stages, render, encode });
        first.push(firstTurn);
        service.push(serviceMs);
        if (decodeTokens > 1 && stages.decode) tps.push(((decodeTokens - 1) / stages.decode) * 1000);
        on.push(followOn);
        off.push(followOff);
        tokens = answer.usage.newTokens;
        masks = answer.segments.length;
      }
      const stages = summarizeStages(runs);
      const firstTurn = summarize(first);
      const [cacheOn, cacheOff] = [summarize(on), summarize(off)];
      const result: CaseResult = {
        name: c.name, stages, firstTurn, service: summarize(service), tokensPerSecond: summarize(tps), tokens, masks,
        followUp: { cacheOn, cacheOff, ratioOn: cacheOn.median / firstTurn.median, ratioOff: cacheOff.median / firstTurn.median },
      };
      results.push(result);
      await o.afterCase?.(k, result);
    }
  } finally {
    server.close();
    await Promise.all([cached.dispose(), uncached.dispose()]);
  }
  return { cases: results, provider: cached.provider };
}
