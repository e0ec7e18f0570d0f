// Child process of part 5: a worker's memory. Loads the bundle on a worker thread (as `npm run worker` does) with the
// given cache bounds, runs `turns` turns (three per conversation, a new image per conversation), and prints one JSON
// line: RSS before loading, after loading, every 20 turns and at the end, the peak RSS, and the cache statistics.
import { InferenceClient } from '../src/inference/index.js';
import { CASES, IMAGE_SIZE } from './cases.js';
import { photoStream } from './images.js';

const [bundle, turnsArg, imageCacheMb, kvCacheMb, threads] = process.argv.slice(2);
const MiB = 1024 * 1024;
const rss = () => process.memoryUsage().rss / MiB;
const baseline = rss();
const model = await InferenceClient.start(bundle!, {
  provider: 'cpu', threads: Number(threads), imageCacheBytes: Number(imageCacheMb) * MiB, kvCacheBytes: Number(kvCacheMb) * MiB,
});
const loaded = rss();
const nextImage = photoStream(IMAGE_SIZE.width, IMAGE_SIZE.height, 7);
const asks = CASES.flatMap((c) => [c.first, c.followUp]);
const samples: { turns: number; rssMiB: number }[] = [];
let chat = await model.conversation(await nextImage());
for (let turn = 1; turn <= Number(turnsArg); turn++) {
  const ask = asks[turn % asks.length]!;
  await chat.ask(ask.text, { prompts: ask.prompts, generation: { maxNewTokens: 32, doSample: false } });
  if (turn % 3 === 0) chat = await model.conversation(await nextImage()); // the old chat stays open: the KV bound must hold
  if (turn % 20 === 0) samples.push({ turns: turn, rssMiB: rss() });
}
const stats = await model.stats();
await model.dispose();
process.stdout.write(`${JSON.stringify({ baselineMiB: baseline, loadedMiB: loaded, samples, peakMiB: process.resourceUsage().maxRSS / 1024, stats })}\n`);
process.exit(0);
