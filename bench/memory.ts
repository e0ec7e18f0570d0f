// Part 5: peak RSS of a worker with the bundle loaded and after many turns, in a child process of its own (so the
// bench's other models do not count), and whether the image-feature and KV caches stayed within their byte bounds.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { CacheStats } from '../src/inference/index.js';

export interface MemoryResult {
  turns: number; baselineMiB: number; loadedMiB: number; afterMiB: number; peakMiB: number;
  samples: { turns: number; rssMiB: number }[];
  caches: { name: string; boundMiB: number; bytesMiB: number; entries: number; evictions: number; withinBound: boolean }[];
}

export async function benchMemory(bundle: string, turns: number, threads: number, boundMiB = { image: 4, kv: 1 }): Promise<MemoryResult> {
  const child = fileURLToPath(new URL('./memory-worker.ts', import.meta.url));
  const { stdout } = await promisify(execFile)(process.execPath,
    ['--import', 'tsx', child, bundle, String(turns), String(boundMiB.image), String(boundMiB.kv), String(threads)],
    { maxBuffer: 1 << 20, timeout: 600_000 });
  const r = JSON.parse(stdout.trim().split('\n').pop()!) as {
    baselineMiB: number; loadedMiB: number; peakMiB: number; samples: MemoryResult['samples']; stats: { imageCache: CacheStats; kvCache: CacheStats };
  };
  const cache = (name: string, s: CacheStats, bound: number) =>
    ({ name, boundMiB: bound, bytesMiB: s.bytes / 2 ** 20, entries: s.entries, evictions: s.evictions, withinBound: s.bytes <= bound * 2 ** 20 });
  return {
    turns, baselineMiB: r.baselineMiB, loadedMiB: r.loadedMiB, afterMiB: r.samples.at(-1)?.rssMiB ?? r.loadedMiB, peakMiB: r.peakMiB, samples: r.samples,
    caches: [cache('image', r.stats.imageCache, boundMiB.image), cache('kv', r.stats.kvCache, boundMiB.kv)],
  };
}
