// Command-line parsing for `omg-llava-bot ask`: turns argv into a typed request or a UsageError that says how to fix it.
// Prompts keep the order they were given in, because the i-th prompt fills the i-th placeholder of the question.

export const usage = `Usage: omg-llava-bot ask IMAGE "QUESTION" [options]

Ask OMG-LLaVA about an image; segmented phrases come back as masks.

Options:
  --point x,y             a point prompt (pixels, or 0-1 fractions of the width and height)
  --box x1,y1,x2,y2       a box prompt (pixels or 0-1 fractions)
  --mask FILE             a mask prompt: an image the size of IMAGE, non-black pixels are the region
                          (prompts may repeat; they fill the question's placeholders in the order given)
  --model DIR             model bundle directory (default: the embedded nano bundle)
  --out FILE              write the overlay image (PNG) to FILE
  --masks-dir DIR         write mask-1.png, mask-2.png, ... (binary, original image size) into DIR
  --json                  print { text, segments: [{ phrase, bbox, area, score }], timings } as JSON
  -h, --help              show this help

Exit codes: 0 answered, 1 internal error, 2 usage error, 3 bad input (image, mask or prompt), 4 model bundle unusable.`;

export type CliPrompt =
  | { kind: 'point'; x: number; y: number; normalized: boolean }
  | { kind: 'box'; x1: number; y1: number; x2: number; y2: number; normalized: boolean }
  | { kind: 'mask'; file: string };

export interface AskArgs {
  command: 'ask';
  image: string;
  question: string;
  prompts: CliPrompt[];
  model?: string;
  out?: string;
  masksDir?: string;
  json: boolean;
}

export type CliArgs = AskArgs | { command: 'help' };

export class UsageError extends Error {
  override name = 'UsageError';
}

const valueOptions = new Set(['--point', '--box', '--mask', '--model', '--out', '--masks-dir']);

export function parseArgs(argv: readonly string[]): CliArgs {
  if (argv.length === 0 || argv.includes('-h') || argv.includes('--help')) return { command: 'help' };
  const [command, ...rest] = argv;
  if (command !== 'ask') throw new UsageError(`unknown command "${command}"; the only command is "ask"`);

  const positional: string[] = [];
  const prompts: CliPrompt[] = [];
  const args: Omit<AskArgs, 'image' | 'question'> = { command: 'ask', prompts, json: false };
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i]!;
    // "--name=value" is accepted as well as "--name value".
    const eq = arg.startsWith('--') ? arg.indexOf('=') : -1;
    const name = eq > 0 ? arg.slice(0, eq) : arg;
    if (name === '--json') {
      args.json = true;
      continue;
    }
    if (!valueOptions.has(name)) {
      // A lone "-" or a negative number is not an option; anything else starting with "-" is a typo worth reporting.
      if (arg.startsWith('-') && arg.length > 1) throw new UsageError(`unknown option "${arg}"`);
      positional.push(arg);
      continue;
    }
    const value = eq > 0 ? arg.slice(eq + 1) : rest[++i];
    if (value === undefined || value === '') throw new UsageError(`${name} needs a value`);
    if (name === '--point') prompts.push(parsePoint(value));
    else if (name === '--box') prompts.push(parseBox(value));
    else if (name === '--mask') prompts.push({ kind: 'mask', file: value });
    else if (name === '--model') args.model = value;
    else if (name === '--out') args.out = value;
    else args.masksDir = value;
  }
  if (positional.length !== 2) {
    throw new UsageError(`ask takes an IMAGE and a "QUESTION" (got ${positional.length} argument${positional.length === 1 ? '' : 's'}); quote the question`);
  }
  const [image, question] = positional as [string, string];
  if (question.trim() === '') throw new UsageError('the question is empty');
  return { ...args, image, question };
}

function numbers(option: string, value: string, count: number, form: string): number[] {
  const parts = value.split(',').map((p) => p.trim());
  const nums = parts.map(Number);
  if (parts.length !== count || parts.some((p) => p === '') || nums.some((n) => !Number.isFinite(n) || n < 0)) {
    throw new UsageError(`${option} expects ${form} with ${count} non-negative numbers, got "${value}"`);
  }
  return nums;
}

// Fractions are written with a decimal point and all lie in [0, 1]; whole numbers are pixels ("--point 1,1" is a pixel).
function isNormalized(value: string, nums: number[]): boolean {
  return value.includes('.') && nums.every((n) => n <= 1);
}

function parsePoint(value: string): CliPrompt {
  const [x, y] = numbers('--point', value, 2, 'x,y') as [number, number];
  return { kind: 'point', x, y, normalized: isNormalized(value, [x, y]) };
}

function parseBox(value: string): CliPrompt {
  const nums = numbers('--box', value, 4, 'x1,y1,x2,y2');
  const [x1, y1, x2, y2] = nums as [number, number, number, number];
  if (x2 <= x1 || y2 <= y1) throw new UsageError(`--box needs x1 < x2 and y1 < y2, got "${value}"`);
  return { kind: 'box', x1, y1, x2, y2, normalized: isNormalized(value, nums) };
}
