// Broken copies of the tiny-random bundle, each failing with one clear, typed error.
import { createHash } from 'node:crypto';
import { cp, mkdtemp, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { readBundle } from '../../src/inference/bundle.js';
import { OmgLlava } from '../../src/inference/model.js';

const TINY = fileURLToPath(new URL('../fixtures/tiny-random/', import.meta.url));
const copies: string[] = [];

async function copyBundle(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'omg-bundle-'));
  copies.push(dir);
  await cp(TINY, dir, { recursive: true });
  return dir;
}

/** Rewrites a file and, unless told otherwise, updates its manifest entry so only the intended defect remains. */
async function replaceFile(dir: string, name: string, bytes: Uint8Array, updateManifest = true): Promise<void> {
  await writeFile(join(dir, name), bytes);
  if (!updateManifest) return;
  const manifest = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8'));
  manifest.files[name] = { sha256: createHash('sha256').update(bytes).digest('hex'), bytes: bytes.length };
  await writeFile(join(dir, 'manifest.json'), JSON.stringify(manifest));
}

async function editManifest(dir: string, edit: (m: { format: number; config: Record<string, unknown> }) => void): Promise<void> {
  const manifest = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8'));
  edit(manifest);
  await writeFile(join(dir, 'manifest.json'), JSON.stringify(manifest));
}

afterEach(async () => {
  await Promise.all(copies.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

const invalid = (reason: RegExp) => expect.objectContaining({ code: 'OMG_ERR_BUNDLE_INVALID', details: { reason: expect.stringMatching(reason) } });

describe('bundle validation', () => {
  it('accepts the intact bundle', async () => {
    const bundle = await readBundle(await copyBundle());
    expect(bundle.manifest.format).toBe(1);
    expect(bundle.graphs.llm.inputs).toContain(`past_key_values.${bundle.manifest.config.llm.num_layers - 1}.value`);
  });

  it('names a listed file that is missing', async () => {
    const dir = await copyBundle();
    await unlink(join(dir, 'prior.onnx'));
    await expect(readBundle(dir)).rejects.toEqual(invalid(/prior\.onnx.*missing/));
  });

  it('names a file whose sha256 differs from the manifest', async () => {
    const dir = await copyBundle();
    const bytes = new Uint8Array(await readFile(join(dir, 'seg.onnx')));
    bytes[bytes.length - 1] = 0xff - bytes[bytes.length - 1]!; // a different last byte
    await replaceFile(dir, 'seg.onnx', bytes, false);
    await expect(readBundle(dir)).rejects.toEqual(invalid(/seg\.onnx has sha256/));
  });

  it('names a file whose size differs from the manifest', async () => {
    const dir = await copyBundle();
    await replaceFile(dir, 'tokenizer.json', new Uint8Array([...await readFile(join(dir, 'tokenizer.json')), 32]), false);
    await expect(readBundle(dir)).rejects.toEqual(invalid(/tokenizer\.json has \d+ bytes/));
  });

  it('rejects another format number and names a bad manifest field', async () => {
    const dir = await copyBundle();
    await editManifest(dir, (m) => { m.format = 2; });
    await expect(readBundle(dir)).rejects.toEqual(invalid(/format 2/));
    await editManifest(dir, (m) => { m.format = 1; m.config.image_size = 'large'; });
    await expect(readBundle(dir)).rejects.toEqual(invalid(/config\.image_size/));
  });

  it('names a graph output that differs from bundle.md', async () => {
    const dir = await copyBundle();
    // Same-length rename of every occurrence keeps the protobuf valid: the graph now outputs "mask_logitz".
    const text = Buffer.from(await readFile(join(dir, 'seg.onnx'))).toString('latin1').replaceAll('mask_logits', 'mask_logitz');
    await replaceFile(dir, 'seg.onnx', new Uint8Array(Buffer.from(text, 'latin1')));
    await expect(OmgLlava.load(dir)).rejects.toEqual(invalid(/seg\.onnx output names.*missing \[mask_logits\].*unexpected \[mask_logitz\]/));
  });

  it('reports a graph that onnxruntime cannot load as OMG_ERR_BUNDLE_LOAD', async () => {
    const dir = await copyBundle();
    await replaceFile(dir, 'vision.onnx', new TextEncoder().encode('this is not an onnx model'));
    await expect(OmgLlava.load(dir)).rejects.toMatchObject({ code: 'OMG_ERR_BUNDLE_LOAD', details: { reason: expect.stringMatching(/vision\.onnx/) } });
  });
});
