// Runs one ONNX graph with onnxruntime-node (the runtime of the TypeScript core) on JSON-encoded inputs.
// Usage: node run_onnx.mjs model.onnx feeds.json out.json
// Tensors are { dtype: float32|int64|uint8|bool, shape: [...], b64: little-endian bytes } (golden.json format).
import { readFileSync, writeFileSync } from 'node:fs';
import ort from 'onnxruntime-node';

const ARRAYS = { float32: Float32Array, int64: BigInt64Array, uint8: Uint8Array, bool: Uint8Array };

function decode({ dtype, shape, b64 }) {
  const bytes = Buffer.from(b64, 'base64');
  const data = new ARRAYS[dtype](bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
  return new ort.Tensor(dtype, dtype === 'bool' ? Array.from(data, Boolean) : data, shape);
}

function encode(tensor) {
  const data = tensor.type === 'bool' ? Uint8Array.from(tensor.data, Number) : tensor.data;
  return { dtype: tensor.type, shape: tensor.dims, b64: Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('base64') };
}

const [modelPath, feedsPath, outPath] = process.argv.slice(2);
const session = await ort.InferenceSession.create(modelPath, { intraOpNumThreads: 1 });
const feeds = Object.fromEntries(Object.entries(JSON.parse(readFileSync(feedsPath, 'utf8'))).map(([k, v]) => [k, decode(v)]));
const outputs = await session.run(feeds);
writeFileSync(outPath, JSON.stringify(Object.fromEntries(Object.entries(outputs).map(([k, v]) => [k, encode(v)]))));
