// A model bundle (spec/bundle.md): manifest.json validated with zod, every listed file checked for size and
// sha256, and the graph input/output names declared once, as data, for session.ts to check against each graph.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { omgError } from '../errors.js';

export const BUNDLE_FORMAT = 1;

const ConfigSchema = z.object({
  image_size: z.number().int().positive(), // S_in
  mask_size: z.number().int().positive(), // M
  memory_sizes: z.array(z.number().int().positive()).length(3), // L0, L1, L2
  num_queries: z.number().int().positive(), // Q
  decoder_dim: z.number().int().positive(), // C
  num_classes: z.number().int().positive(), // K - 1
  class_names: z.array(z.string()),
  prior_grid: z.number().int().positive(), // G
  clip_channels: z.number().int().positive(), // F
  llm: z.object({
    hidden_size: z.number().int().positive(), // D
    num_layers: z.number().int().positive(), // N_L
    num_kv_heads: z.number().int().positive(), // H_kv
    head_dim: z.number().int().positive(), // D_h
    vocab_rows: z.number().int().positive(), // V
  }),
  preprocess: z.object({
    pad_color: z.array(z.number().int().min(0).max(255)).length(3),
    mean: z.array(z.number()).length(3),
    std: z.array(z.number().positive()).length(3),
    resample: z.literal('bicubic'),
  }),
  tokens: z.object({
    bos: z.number().int(), eos: z.number().int(), im_start: z.number().int(), im_end: z.number().int(),
    seg: z.number().int(), p_open: z.number().int(), p_close: z.number().int(),
    region: z.number().int(), mark: z.number().int(),
  }),
  template: z.object({
    system: z.string(),
    user: z.string().includes('{input}'),
    separator: z.string(),
    image: z.string().min(1),
    stop: z.array(z.string()),
  }),
  generation: z.object({
    max_new_tokens: z.number().int().positive(),
    do_sample: z.boolean(),
    temperature: z.number().positive(),
    top_k: z.number().int().nonnegative(),
    top_p: z.number().positive().max(1),
  }),
});

const ManifestSchema = z.object({
  format: z.literal(BUNDLE_FORMAT),
  name: z.string().min(1),
  description: z.string().optional(),
  config: ConfigSchema,
  files: z.record(z.string(), z.object({ sha256: z.string().regex(/^[0-9a-f]{64}$/), bytes: z.number().int().nonnegative() })),
  provenance: z.unknown().optional(),
  quality: z.unknown().optional(),
});

export type Manifest = z.infer<typeof ManifestSchema>;
export type ModelConfig = Manifest['config'];

export type GraphName = 'vision' | 'prior' | 'prompt' | 'embed' | 'llm' | 'seg';
export const GRAPH_NAMES: readonly GraphName[] = ['vision', 'prior', 'prompt', 'embed', 'llm', 'seg'];

export interface GraphSpec { file: string; inputs: string[]; outputs: string[] }

const FEATURES = ['mask_features', 'mem0', 'mem1', 'mem2'];

/** KV-cache names of the llm graph (Hugging Face Optimum convention): one key and one value per layer. */
export function kvNames(prefix: 'past_key_values' | 'present', numLayers: number): string[] {
  return Array.from({ length: numLayers }, (_, i) => [`${prefix}.${i}.key`, `${prefix}.${i}.value`]).flat();
}

/** The graph contract of bundle.md, as data. Only the llm names depend on the config (N_L). */
export function graphSpecs(config: ModelConfig): Record<GraphName, GraphSpec> {
  const layers = config.llm.num_layers;
  return {
    vision: { file: 'vision.onnx', inputs: ['pixel_values'],
      outputs: [...FEATURES, 'clip_feature', 'query_feat', 'query_pos', 'class_logits', 'mask_logits'] },
    prior: { file: 'prior.onnx', inputs: ['clip_feature', 'query_feat', 'query_pos', 'class_logits', 'mask_logits'],
      outputs: ['pixel_tokens', 'separator', 'object_tokens', 'object_valid'] },
    prompt: { file: 'prompt.onnx', inputs: [...FEATURES, 'points', 'boxes', 'regions', 'kinds'], outputs: ['prompt_embeds'] },
    embed: { file: 'embed.onnx', inputs: ['input_ids'], outputs: ['inputs_embeds'] },
    llm: { file: 'llm.onnx', inputs: ['inputs_embeds', 'attention_mask', 'position_ids', ...kvNames('past_key_values', layers)],
      outputs: ['logits', 'last_hidden_state', ...kvNames('present', layers)] },
    seg: { file: 'seg.onnx', inputs: ['seg_hidden', ...FEATURES], outputs: ['mask_logits'] },
  };
}

export interface Bundle { dir: string; manifest: Manifest; graphs: Record<GraphName, GraphSpec>; tokenizerJson: unknown }

const invalid = (reason: string) => omgError('OMG_ERR_BUNDLE_INVALID', { reason });

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

function parseManifest(text: string): Manifest {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw invalid('manifest.json is not valid JSON');
  }
  const format = (raw as { format?: unknown } | null)?.format;
  if (format !== BUNDLE_FORMAT) throw invalid(`manifest.json has format ${JSON.stringify(format)}; this reader supports format ${BUNDLE_FORMAT}`);
  const parsed = ManifestSchema.safeParse(raw);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    throw invalid(`manifest.json field "${first?.path.join('.') ?? ''}": ${first?.message ?? 'invalid'}`);
  }
  return parsed.data;
}

/** Checks the manifest's size relations that the graphs rely on (bundle.md symbols). */
function checkConfig(c: ModelConfig): void {
  const s = c.image_size;
  const expect: [string, number, number][] = [
    ['mask_size', c.mask_size, s / 4],
    ['prior_grid', c.prior_grid, s / 64],
    ['memory_sizes[0]', c.memory_sizes[0] ?? 0, s / 32],
    ['memory_sizes[1]', c.memory_sizes[1] ?? 0, s / 16],
    ['memory_sizes[2]', c.memory_sizes[2] ?? 0, s / 8],
    ['class_names length', c.class_names.length, c.num_classes],
  ];
  for (const [name, got, want] of expect) {
    if (got !== want) throw invalid(`manifest.json config ${name} is ${got}, expected ${want}`);
  }
}

/**
 * Reads and validates a bundle folder: the manifest schema, the required files, and every listed file's size and
 * sha256. Throws OMG_ERR_BUNDLE_INVALID naming the first problem found.
 */
export async function readBundle(dir: string): Promise<Bundle> {
  let text: string;
  try {
    text = await readFile(join(dir, 'manifest.json'), 'utf8');
  } catch {
    throw invalid(`manifest.json is missing in the bundle folder`);
  }
  const manifest = parseManifest(text);
  checkConfig(manifest.config);
  const graphs = graphSpecs(manifest.config);
  for (const required of ['tokenizer.json', ...GRAPH_NAMES.map((g) => graphs[g].file)]) {
    if (!manifest.files[required]) throw invalid(`manifest.json does not list the required file ${required}`);
  }
  for (const [name, entry] of Object.entries(manifest.files)) {
    const path = join(dir, name);
    const size = await stat(path).then((s) => s.size, () => null);
    if (size === null) throw invalid(`file ${name} is listed in manifest.json but missing`);
    if (size !== entry.bytes) throw invalid(`file ${name} has ${size} bytes, manifest.json says ${entry.bytes}`);
    const digest = await sha256File(path);
    if (digest !== entry.sha256) throw invalid(`file ${name} has sha256 ${digest}, manifest.json says ${entry.sha256}`);
  }
  let tokenizerJson: unknown;
  try {
    tokenizerJson = JSON.parse(await readFile(join(dir, 'tokenizer.json'), 'utf8'));
  } catch {
    throw invalid('tokenizer.json is not valid JSON');
  }
  return { dir, manifest, graphs, tokenizerJson };
}

/** Compares a loaded graph's names with the contract; throws OMG_ERR_BUNDLE_INVALID naming what differs. */
export function checkGraphNames(spec: GraphSpec, inputNames: readonly string[], outputNames: readonly string[]): void {
  const diff = (kind: string, want: string[], got: readonly string[]) => {
    const missing = want.filter((n) => !got.includes(n));
    const extra = got.filter((n) => !want.includes(n));
    if (missing.length || extra.length) {
      throw invalid(`${spec.file} ${kind} names differ from bundle.md: missing [${missing.join(', ')}], unexpected [${extra.join(', ')}]`);
    }
  };
  diff('input', spec.inputs, inputNames);
  diff('output', spec.outputs, outputNames);
}
