// Which bundle the bench runs: the trained nano bundle when it is there, else the tiny-random test fixture (random
// weights, 128 px input, a 2-layer LLM: the stage shares and ratios are still real, the absolute sizes are not).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
export const REPO_ROOT = root;
export const NANO = `${root}models/omg-llava-nano`;
export const TINY = `${root}test/fixtures/tiny-random`;

export interface BenchBundle { dir: string; name: string; fallback: boolean }

export function chooseBundle(explicit?: string): BenchBundle {
  if (explicit) return { dir: explicit, name: explicit, fallback: false };
  if (existsSync(`${NANO}/manifest.json`)) return { dir: NANO, name: 'omg-llava-nano', fallback: false };
  return { dir: TINY, name: 'tiny-random', fallback: true };
}
