// Part 2: the PyTorch reference on the same turns, weights, images and thread count (bench/peer.py), and the
// ratio PyTorch / TypeScript per stage and end to end (above 1: the TypeScript + onnxruntime path is faster).
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { BenchCase } from './cases.js';
import { summarize, summarizeStages, type Summary } from './stats.js';
import type { CaseResult } from './turns.js';

export const MODEL_STAGES = ['preprocess', 'vision', 'prior', 'prompts', 'prefill', 'decode', 'seg', 'postprocess'];

export interface PeerCase {
  name: string; stages: Record<string, Summary>; firstTurn: Summary; followUp: Summary; tokens: number;
  ratio: Record<string, number>; // PyTorch median / TypeScript median, per stage and 'firstTurn'
}
export interface PeerResult { torch: string; threads: number; weights: { source: string; checked_initializers: number; max_abs_diff: number }; cases: PeerCase[] }

interface PeerRun { stages: Record<string, number>; e2e: number; followUp: number; tokens: number }

/** The system python first: Debian's torch and onnx live there. */
export const python = (): string => process.env.PYTHON ?? (existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3');

export async function benchPeer(cases: BenchCase[], ts: CaseResult[], o: {
  bundle: string; threads: number; reps: number; warmup: number; maxNewTokens: number; images: Uint8Array[][]; scratch: string;
}): Promise<PeerResult> {
  mkdirSync(o.scratch, { recursive: true });
  const withImages = cases.map((c, k) => ({
    ...c,
    images: o.images[k]!.map((bytes, i) => {
      const path = `${o.scratch}/peer-image-${k}-${i}.jpg`;
      writeFileSync(path, bytes);
      return path;
    }),
  }));
  const request = JSON.stringify({ bundle: o.bundle, cases: withImages, threads: o.threads, reps: o.reps, warmup: o.warmup, max_new_tokens: o.maxNewTokens });
  const script = fileURLToPath(new URL('./peer.py', import.meta.url));
  const child = promisify(execFile)(python(), [script], { maxBuffer: 64 << 20, timeout: 900_000 });
  child.child.stdin!.end(request);
  const out = JSON.parse((await child).stdout) as Omit<PeerResult, 'cases'> & { cases: { name: string; runs: PeerRun[] }[] };
  return {
    ...out,
    cases: out.cases.map((c, i) => {
      const stages = summarizeStages(c.runs.map((r) => r.stages));
      const firstTurn = summarize(c.runs.map((r) => r.e2e));
      const mine = ts[i]!;
      const ratio: Record<string, number> = {};
      for (const s of MODEL_STAGES) if (stages[s] && mine.stages[s]) ratio[s] = stages[s]!.median / mine.stages[s]!.median;
      ratio.firstTurn = firstTurn.median / mine.firstTurn.median;
      return { name: c.name, stages, firstTurn, followUp: summarize(c.runs.map((r) => r.followUp)), tokens: c.runs.at(-1)?.tokens ?? 0, ratio };
    }),
  };
}
