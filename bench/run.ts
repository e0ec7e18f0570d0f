// `npm run bench [-- --quick] [--bundle DIR] [--threads N] [--parts turns,peer,service,memory,render,projection]`
// Runs every part of issue 6 side by side in one process, prints the tables and writes bench/results/latest.json.
// See bench/README.md for how to read the numbers.
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import sharp from 'sharp';
import { chooseBundle, REPO_ROOT } from './bundle.js';
import { CASES, IMAGE_SIZE } from './cases.js';
import { photoStream } from './images.js';
import { benchMemory } from './memory.js';
import { MODEL_STAGES, Peer, python, type PeerCase, type PeerResult } from './peer.js';
import { startRedis } from './redis.js';
import { benchRender } from './render.js';
import { benchService } from './service.js';
import { fmt, spread } from './stats.js';
import { printTable } from './table.js';
import { benchTurns, type CaseResult } from './turns.js';

const PARTS = ['turns', 'peer', 'service', 'memory', 'render', 'projection'] as const;
const { values: args } = parseArgs({ options: {
  quick: { type: 'boolean', default: false }, bundle: { type: 'string' }, threads: { type: 'string', default: '1' },
  parts: { type: 'string', default: PARTS.join(',') },
} });
const parts = new Set(args.parts!.split(','));
const quick = args.quick!;
const threads = Number(args.threads);
const reps = quick ? 3 : 5, warmup = 1;
const maxNewTokens = 32;
const scratch = `${REPO_ROOT}bench/results/tmp`;
mkdirSync(scratch, { recursive: true });

const bundle = chooseBundle(args.bundle);
if (bundle.fallback) {
  console.log('\n*** models/omg-llava-nano is missing: FALLING BACK to the tiny-random test fixture (random weights, 128 px input,');
  console.log('*** 2-layer LLM). Stage shares and ratios are real for that model; absolute times say nothing about nano. ***\n');
}
const started = Date.now();
const env = {
  date: new Date().toISOString(), cores: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? '', memoryGiB: os.totalmem() / 2 ** 30,
  loadAverageAtStart: os.loadavg(), node: process.version, onnxruntime: ort.env.versions.common, sharp: sharp.versions.sharp ?? '',
  provider: 'cpu', threads, quick, bundle: bundle.name, bundleFallback: bundle.fallback, maxNewTokens, reps, warmup,
};
console.log(`bench: ${bundle.name}, ${threads} thread(s) per side, ${reps} reps after ${warmup} warm-up; ${env.cores} cores, ` +
  `${env.memoryGiB.toFixed(0)} GiB, load average ${env.loadAverageAtStart.map((l) => l.toFixed(1)).join(' ')}`);

const results: Record<string, unknown> = { env };

/** One part; a failing part is reported and recorded, and the others still run. */
async function part(name: string, fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (err) {
    failed(name, err);
  }
}

function failed(name: string, err: unknown): null {
  console.log(`\n${name}: FAILED: ${err instanceof Error ? err.message : String(err)}`);
  results[`${name}Error`] = String(err);
  return null;
}
const nextPhoto = photoStream(IMAGE_SIZE.width, IMAGE_SIZE.height, 1);
const images: Uint8Array[][] = [];
for (const _ of CASES) {
  const perCase: Uint8Array[] = [];
  for (let i = 0; i < reps + warmup; i++) perCase.push(await nextPhoto()); // one at a time: the stream reuses its pixels
  images.push(perCase);
}

if (parts.has('turns') || parts.has('peer')) await part('turns', async () => {
  // The PyTorch side loads first, then answers each case right after the TypeScript side ran it (same load).
  const peer = parts.has('peer')
    ? await Peer.start({ bundle: bundle.dir, threads, warmup, maxNewTokens, images, scratch }).catch((err: unknown) => failed('peer', err))
    : null;
  const peerCases: PeerCase[] = [];
  const afterCase = async (k: number, result: CaseResult) => {
    if (peer) await part('peer', async () => { peerCases.push(await peer.run(CASES[k]!, k, result)); });
  };
  const turns = await benchTurns(CASES, { bundle: bundle.dir, threads, reps, warmup, maxNewTokens, images, afterCase });
  peer?.close();
  env.provider = turns.provider;
  results.turns = turns.cases;
  const order = ['download', 'intake', ...MODEL_STAGES, 'render', 'encode'];
  printTable(`1. First turn, stage by stage (ms, median (p10–p90)), ${IMAGE_SIZE.width}x${IMAGE_SIZE.height} JPEG`,
    ['stage', ...turns.cases.map((c) => c.name)],
    [
      ...order.map((s) => [s, ...turns.cases.map((c) => (c.stages[s] ? spread(c.stages[s]) : '-'))]),
      ['decode tokens/s', ...turns.cases.map((c) => spread(c.tokensPerSecond))],
      ['tokens / masks', ...turns.cases.map((c) => `${c.tokens} / ${c.masks}`)],
      ['model turn (conversation+ask)', ...turns.cases.map((c) => spread(c.firstTurn))],
      ['whole turn (download..encode)', ...turns.cases.map((c) => spread(c.service))],
    ]);
  printTable('3. Follow-up turn on the same image / first turn (target ≤ 0.35)', ['case', 'caches on', 'ratio', 'caches off', 'ratio'],
    turns.cases.map((c) => [c.name, spread(c.followUp.cacheOn), fmt(c.followUp.ratioOn, 2), spread(c.followUp.cacheOff), fmt(c.followUp.ratioOff, 2)]));

  if (peer && peerCases.length === CASES.length) {
    const p: PeerResult = { ...peer.info, cases: peerCases };
    results.peer = p;
    printTable(`2. PyTorch ${p.torch} / TypeScript+onnxruntime ${env.onnxruntime}, median ratio (>1: TS faster; target end to end ≥ 3), ` +
      `${p.threads} thread(s), cases alternating; weights: ${p.weights.source}, ${p.weights.checked_initializers} initializers equal`,
      ['stage', ...p.cases.map((c) => c.name)],
      [
        ...[...MODEL_STAGES, 'firstTurn'].map((s) => [s === 'firstTurn' ? 'end to end' : s, ...p.cases.map((c) => fmt(c.ratio[s] ?? NaN, 2))]),
        ['PyTorch end to end ms', ...p.cases.map((c) => spread(c.firstTurn))],
        ['tokens PyTorch / TS', ...p.cases.map((c, i) => `${c.tokens} / ${turns.cases[i]!.tokens}`)],
        ['PyTorch follow-up / first', ...p.cases.map((c) => fmt(c.followUp.median / c.firstTurn.median, 2))],
      ]);
  }
});

if (parts.has('service')) await part('service', async () => {
  const redis = await startRedis(6391).catch((err: unknown) => { console.log(`no loopback Redis (${String(err)}): BullMQ parts skipped`); return null; });
  try {
    const s = await benchService({
      bundle: bundle.dir, threads, reps, warmup, queueJobs: quick ? 20 : 50, throughputJobs: quick ? 4 : 8, redisUrl: redis?.url ?? null,
      ask: CASES[0]!.first, image: IMAGE_SIZE, nextImage: photoStream(IMAGE_SIZE.width, IMAGE_SIZE.height),
    });
    results.service = s;
    const row = (name: string, p: typeof s.memory | null) => p
      ? [name, spread(p.turn), fmt(p.overheadMs), `${fmt(100 * p.overheadShare)}%`, spread(p.outsideProcessorMs)] : [name, '-', '-', '-', '-'];
    const q = s.queueOnly;
    printTable('4. Service overhead: a first turn through the service vs the pipeline called directly (target ≤ 10%; paired per round)',
      ['path', 'turn ms', 'overhead ms', 'share', 'outside processor ms'],
      [['direct (model in thread + overlay + RLE)', spread(s.direct), '', '', ''], row('in-process queue + worker thread', s.memory), row('BullMQ + loopback Redis', s.bullmq)]);
    printTable('   Queues alone (a processor that does nothing), ms per job', ['queue', 'enqueue → result', 'of which enqueue()'], [
      ['in-process', spread(q.memory.perJob), spread(q.memory.enqueue)],
      ['BullMQ (target p50 ≤ 2)', q.bullmq ? spread(q.bullmq.perJob) : '-', q.bullmq ? spread(q.bullmq.enqueue) : '-'],
      ['bare BullMQ (add → no-op worker → waitUntilFinished)', q.bareBullmq ? spread(q.bareBullmq) : '-', ''],
      ['Redis PING round trip', q.redisPingMs ? spread(q.redisPingMs) : '-', ''],
      ...s.throughput.map((t) => [`BullMQ throughput, ${t.workers} worker(s), ${t.jobs} jobs`, `${fmt(t.jobsPerSecond, 2)} jobs/s`, '']),
    ]);
  } finally {
    await redis?.stop();
  }
});

if (parts.has('memory')) await part('memory', async () => {
  const m = await benchMemory(bundle.dir, quick ? 40 : 100, threads);
  results.memory = m;
  printTable(`5. Worker memory (own process, model on a worker thread), ${m.turns} turns`, ['measure', 'value'], [
    ['RSS before loading', `${fmt(m.baselineMiB)} MiB`], ['RSS with the bundle loaded', `${fmt(m.loadedMiB)} MiB`],
    ['RSS after the turns', `${fmt(m.afterMiB)} MiB`], ['peak RSS', `${fmt(m.peakMiB)} MiB`],
    ['RSS every 20 turns', m.samples.map((s) => fmt(s.rssMiB, 0)).join(' ')],
    ...m.caches.map((c) => [`${c.name} cache`, `${fmt(c.bytesMiB, 2)} of ${c.boundMiB} MiB, ${c.entries} entries, ${c.evictions} evictions: ${c.withinBound ? 'within bound' : 'OVER BOUND'}`]),
  ]);
});

if (parts.has('render')) await part('render', async () => {
  const r = await benchRender(1024, 768, 5, quick ? 5 : 10, 2);
  const big = await benchRender(2000, 1500, 5, 3, 1);
  results.render = [r, big];
  printTable('Render: renderOverlay of a JPEG photo with 5 masks, PNG out (target 1024x768 < 50 ms)', ['size', 'wall ms', 'CPU ms', 'of which JPEG decode', 'of which PNG encode', 'PNG bytes'],
    [r, big].map((x) => [`${x.width}x${x.height}`, spread(x.wall), spread(x.cpu), spread(x.decodeCpu), spread(x.pngEncodeCpu), String(x.pngBytes)]));
});

if (parts.has('projection')) await part('projection', async () => {
  const script = fileURLToPath(new URL('./projection.py', import.meta.url));
  const p = JSON.parse((await promisify(execFile)(python(), [script, '--config', 'omg-llava-7b', '--context', '1024'])).stdout);
  results.projection = p;
  const g = (n: number, unit: string) => `${(n / 1e9).toFixed(1)} G${unit}`;
  const limits = (d: { bandwidth_bound_tokens_per_s: Record<string, number> }) =>
    Object.entries(d.bandwidth_bound_tokens_per_s).map(([gpu, t]) => `${fmt(t, 0)} tokens/s on ${gpu}`).join(', ');
  printTable(`6. Real-size projection (${p.config}, ${p.llm.params / 1e9 > 0 ? (p.llm.params / 1e9).toFixed(2) : '?'} B LLM parameters, ${p.context_tokens} cached positions)`,
    ['quantity', 'value'], [
      ['decode: FLOPs per token', g(p.decode.flops_per_token, 'FLOP')],
      ['decode: bytes per token fp16 / fp32', `${g(p.decode.fp16.bytes_per_token, 'B')} / ${g(p.decode.fp32.bytes_per_token, 'B')}`],
      ['bandwidth-bound decode fp16', limits(p.decode.fp16)], ['bandwidth-bound decode fp32', limits(p.decode.fp32)],
      [`prefill of the image block (${p.prefill_image_block.tokens} tokens)`, g(p.prefill_image_block.flops, 'FLOP')],
      [`vision pass (${p.vision.image_size} px)`, `${g(p.vision.flops, 'FLOP')} (backbone ${g(p.vision.flops_by_part.backbone, 'FLOP')})`],
    ]);
});

results.wallSeconds = (Date.now() - started) / 1000;
// Only a run of every part on the default bundle replaces the committed results; other runs go to the scratch folder.
const complete = PARTS.every((p) => parts.has(p)) && !args.bundle;
const out = complete ? 'bench/results/latest.json' : 'bench/results/tmp/last-run.json';
writeFileSync(`${REPO_ROOT}${out}`, `${JSON.stringify(results, (_k, v) => (typeof v === 'number' ? Math.round(v * 1000) / 1000 : v), 2)}\n`);
console.log(`\nwrote ${out} (${fmt(results.wallSeconds as number, 0)} s)`);
process.exit(0); // onnxruntime and BullMQ handles would keep the process alive a little longer
