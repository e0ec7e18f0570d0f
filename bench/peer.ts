// Part 2: the PyTorch reference on the same turns, weights, images and thread count (bench/peer.py), and the
// ratio PyTorch / TypeScript per stage and end to end (above 1: the TypeScript + onnxruntime path is faster).
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
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
export interface PeerOptions {
  bundle: string; threads: number; warmup: number; maxNewTokens: number; images: Uint8Array[][]; scratch: string;
}

/** The system python first: Debian's torch and onnx live there. */
export const python = (): string => process.env.PYTHON ?? (existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3');

/** The PyTorch side as a long-lived child (its weights load once), answering one case at a time. */
export class Peer {
  private constructor(private readonly child: ChildProcessWithoutNullStreams, private readonly next: () => Promise<unknown>,
    readonly info: Omit<PeerResult, 'cases'>, private readonly o: PeerOptions) {}

  static async start(o: PeerOptions): Promise<Peer> {
    const child = spawn(python(), [fileURLToPath(new URL('./peer.py', import.meta.url))], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-4000); });
    const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    const next = async (): Promise<unknown> => {
      const line = await lines.next();
      if (line.done) throw new Error(`bench/peer.py ended: ${stderr}`);
      return JSON.parse(line.value);
    };
    child.stdin.write(`${JSON.stringify({ bundle: o.bundle, threads: o.threads, warmup: o.warmup, max_new_tokens: o.maxNewTokens })}\n`);
    return new Peer(child, next, (await next()) as Omit<PeerResult, 'cases'>, o);
  }

  /** Case k on the PyTorch side, against the TypeScript result of the same case. */
  async run(c: BenchCase, k: number, mine: CaseResult): Promise<PeerCase> {
    mkdirSync(this.o.scratch, { recursive: true });
    const images = this.o.images[k]!.map((bytes, i) => {
      const path = `${this.o.scratch}/peer-image-${k}-${i}.jpg`;
      writeFileSync(path, bytes);
      return path;
    });
    this.child.stdin.write(`${JSON.stringify({ ...c, images })}\n`);
    const { runs } = (await this.next()) as { runs: PeerRun[] };
    const stages = summarizeStages(runs.map((r) => r.stages));
    const firstTurn = summarize(runs.map((r) => r.e2e));
    const ratio: Record<string, number> = {};
    for (const s of MODEL_STAGES) if (stages[s] && mine.stages[s]) ratio[s] = stages[s]!.median / mine.stages[s]!.median;
    ratio.firstTurn = firstTurn.median / mine.firstTurn.median;
    return { name: c.name, stages, firstTurn, followUp: summarize(runs.map((r) => r.followUp)), tokens: runs.at(-1)?.tokens ?? 0, ratio };
  }

  close(): void {
    this.child.stdin.end();
  }
}
