// Encodes every sample of a tokenizer-samples.json with @huggingface/tokenizers (what the TypeScript core uses)
// and prints the mismatches as JSON; exit code 1 if any.
// Usage: node check_tokenizer.mjs tokenizer.json tokenizer-samples.json
import { readFileSync } from 'node:fs';
import { Tokenizer } from '@huggingface/tokenizers';

const [tokenizerPath, samplesPath] = process.argv.slice(2);
const tokenizer = new Tokenizer(JSON.parse(readFileSync(tokenizerPath, 'utf8')), {});
const { samples } = JSON.parse(readFileSync(samplesPath, 'utf8'));
const mismatches = [];
for (const { text, add_bos, ids } of samples) {
  const got = tokenizer.encode(text, { add_special_tokens: add_bos }).ids;
  if (JSON.stringify(got) !== JSON.stringify(ids)) mismatches.push({ text, add_bos, expected: ids, got });
}
console.log(JSON.stringify({ checked: samples.length, mismatches }));
process.exit(mismatches.length ? 1 : 0);
