// The measuring half of bench/gpu.sh: time to first token and decode tokens/s of a bundle on one execution
// provider, read against the bandwidth-bound decode limit (every llm.onnx weight byte read once per token).
// Exits 3, saying so plainly, when the CUDA execution provider cannot be loaded.
import { statSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { isOmgError } from '../src/errors.js';
import { OmgLlava, type Provider } from '../src/inference/index.js';
import { CASES } from './cases.js';
import { photo } from './images.js';
import { summarize } from './stats.js';

const { values: a } = parseArgs({ options: {
  bundle: { type: 'string' }, provider: { type: 'string', default: 'cuda' }, tokens: { type: 'string', default: '64' },
  reps: { type: 'string', default: '3' }, bandwidth: { type: 'string', default: '3.35e12' }, out: { type: 'string' },
} });
if (!a.bundle) throw new Error('--bundle DIR is required');
const provider = a.provider as Provider;

let model: OmgLlava;
const t0 = performance.now();
try {
  model = await OmgLlava.load(a.bundle, { provider });
} catch (err) {
  if (isOmgError(err) && err.code === 'OMG_ERR_PROVIDER') {
    console.log(`NO CUDA: onnxruntime-node ${ort.env.versions.common} could not load the CUDA execution provider (${String(err.details?.reason ?? err.message)}).`);
    console.log('Install it with ONNXRUNTIME_NODE_INSTALL=cuda12 npm ci on a host with CUDA 12 and cuDNN 9, then rerun.');
    process.exit(3);
  }
  throw err;
}
const loadMs = performance.now() - t0;
const llmBytes = readdirSync(a.bundle).filter((f) => f.startsWith('llm.onnx')).reduce((n, f) => n + statSync(join(a.bundle!, f)).size, 0);
const image = await photo(1024, 768, 'jpeg');
const ask = CASES[0]!.first;
const tPass = performance.now();
const chat = await model.conversation(image);
const imagePassMs = performance.now() - tPass;
const ttft: number[] = [], tps: number[] = [];
let tokens = 0, promptTokens = 0;
for (let i = 0; i < Number(a.reps) + 1; i++) {
  const c = i === 0 ? chat : await model.conversation(image); // image features cached after the first
  const answer = await c.ask(ask.text, { generation: { maxNewTokens: Number(a.tokens), doSample: false } });
  c.close();
  if (i === 0) continue; // warm-up
  const tm = answer.timings;
  ttft.push((tm.prompts ?? 0) + (tm.prefill ?? 0));
  if ((tm.decodeTokens ?? 0) > 1 && tm.decode) tps.push(((tm.decodeTokens! - 1) / tm.decode) * 1000);
  tokens = answer.usage.newTokens;
  promptTokens = answer.usage.promptTokens;
}
const limit = Number(a.bandwidth) / llmBytes;
const result = {
  bundle: model.manifest.name, provider: model.provider, ort: ort.env.versions.common, loadMs, imagePassMs,
  promptTokens, newTokens: tokens, ttftMs: summarize(ttft), decodeTokensPerSecond: summarize(tps),
  llmWeightBytes: llmBytes, bandwidthBytesPerS: Number(a.bandwidth), bandwidthBoundTokensPerS: limit,
  fractionOfLimit: summarize(tps).median / limit,
};
await model.dispose();
console.log(`bundle ${result.bundle} on ${result.provider} (onnxruntime ${result.ort}); load ${loadMs.toFixed(0)} ms, image pass ${imagePassMs.toFixed(1)} ms`);
console.log(`time to first token (prompts + prefill of ${promptTokens} positions): ${result.ttftMs.median.toFixed(1)} ms`);
console.log(`decode: ${result.decodeTokensPerSecond.median.toFixed(1)} tokens/s; bandwidth-bound limit ${limit.toFixed(1)} tokens/s` +
  ` (${(llmBytes / 2 ** 30).toFixed(2)} GiB of llm weights per token at ${(Number(a.bandwidth) / 1e12).toFixed(2)} TB/s): ${(100 * result.fractionOfLimit).toFixed(1)}% of it`);
if (a.out) writeFileSync(a.out, `${JSON.stringify(result, null, 2)}\n`);
