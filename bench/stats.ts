// Repetition and summaries: every number the bench reports is a median over repeated runs after a warm-up, with
// its spread (p10..p90), because the machine is shared and single runs are noise.

export interface Summary { median: number; p10: number; p90: number; n: number }

export function summarize(samples: number[]): Summary {
  const s = [...samples].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.max(0, Math.round(q * (s.length - 1))))] ?? NaN;
  return { median: at(0.5), p10: at(0.1), p90: at(0.9), n: s.length };
}

/** Runs `fn` `warmup` times unmeasured, then `reps` times; returns the wall-clock ms of each measured run. */
export async function repeat(reps: number, warmup: number, fn: () => Promise<unknown>): Promise<number[]> {
  for (let i = 0; i < warmup; i++) await fn();
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    await fn();
    times.push(performance.now() - t0);
  }
  return times;
}

/** Per-stage samples -> per-stage summaries. */
export function summarizeStages(runs: Record<string, number>[]): Record<string, Summary> {
  const stages = [...new Set(runs.flatMap((r) => Object.keys(r)))];
  return Object.fromEntries(stages.map((s) => [s, summarize(runs.map((r) => r[s] ?? 0))]));
}

export const fmt = (ms: number, digits = 1): string => (Number.isFinite(ms) ? ms.toFixed(digits) : '-');
export const spread = (s: Summary): string => `${fmt(s.median)} (${fmt(s.p10)}–${fmt(s.p90)})`;
