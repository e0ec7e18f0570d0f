// The only file that imports onnxruntime-node: it creates sessions with the chosen execution provider, checks each
// feed against the graph's input names and converts between onnxruntime tensors and our plain tensors.
import * as ort from 'onnxruntime-node';
import { omgError } from '../errors.js';
import { checkGraphNames, type GraphSpec } from './bundle.js';

export type Provider = 'cpu' | 'cuda' | 'auto';

/** A plain tensor: what every stage passes around (and what crosses the worker-thread boundary). */
export type Tensor =
  | { type: 'float32'; dims: number[]; data: Float32Array }
  | { type: 'int64'; dims: number[]; data: BigInt64Array }
  | { type: 'bool'; dims: number[]; data: Uint8Array };

export type Feeds = Record<string, Tensor>;

export const float32 = (data: Float32Array, dims: number[]): Tensor => ({ type: 'float32', data, dims });
export const int64 = (values: ArrayLike<number>, dims: number[]): Tensor =>
  ({ type: 'int64', data: BigInt64Array.from(Array.from(values, (v) => BigInt(v))), dims });

/** The float data of a float32 tensor; a graph returning another dtype breaks the bundle contract. */
export function f32(t: Tensor | undefined, name: string): Float32Array {
  if (!t || t.type !== 'float32') throw omgError('OMG_ERR_BUNDLE_INVALID', { reason: `graph output ${name} is not float32` });
  return t.data;
}

export interface SessionOptions { provider?: Provider; threads?: number; warn?: (msg: string) => void }

/** Element types our graphs declare in their input metadata, mapped to our tensor types. */
const INPUT_TYPES: Record<string, Tensor['type']> = { float32: 'float32', int64: 'int64', bool: 'bool' };

export class GraphSession {
  private constructor(
    readonly spec: GraphSpec,
    readonly provider: 'cpu' | 'cuda', // the execution provider actually in use
    private readonly session: ort.InferenceSession,
  ) {}

  /** Loads one graph; the provider choice is explicit and `auto` falls back to CPU with one warning. */
  static async create(path: string, spec: GraphSpec, opts: SessionOptions = {}): Promise<GraphSession> {
    const provider = opts.provider ?? 'cpu';
    const base: ort.InferenceSession.SessionOptions = {
      graphOptimizationLevel: 'all',
      ...(opts.threads ? { intraOpNumThreads: opts.threads, interOpNumThreads: 1 } : {}),
    };
    const open = (ep: 'cpu' | 'cuda') => ort.InferenceSession.create(path, { ...base, executionProviders: [ep] });
    const ep = provider === 'cpu' ? 'cpu' : 'cuda';
    let session: ort.InferenceSession;
    try {
      session = await open(ep);
    } catch (err) {
      if (provider === 'cpu') throw omgError('OMG_ERR_BUNDLE_LOAD', { reason: `${spec.file} failed to load: ${String(err)}` }, err);
      if (provider === 'cuda') throw omgError('OMG_ERR_PROVIDER', { provider: 'cuda', reason: String(err) }, err);
      opts.warn?.(`CUDA execution provider unavailable for ${spec.file} (${String(err)}); falling back to CPU`);
      return GraphSession.create(path, spec, { ...opts, provider: 'cpu' });
    }
    checkGraphNames(spec, session.inputNames, session.outputNames);
    return new GraphSession(spec, ep, session);
  }

  get inputNames(): readonly string[] { return this.session.inputNames; }

  /** Declared dims of an input (symbolic axes as strings or -1), e.g. to create an empty KV cache. */
  inputDims(name: string): readonly (number | string)[] {
    const meta = this.session.inputMetadata.find((m) => m.name === name);
    return meta && meta.isTensor ? meta.shape : [];
  }

  /** Runs the graph; a missing feed or wrong dtype is named, and a failing run lists each input's dtype and dims. */
  async run(feeds: Feeds): Promise<Record<string, Tensor>> {
    const missing = this.session.inputNames.filter((n) => !(n in feeds));
    if (missing.length) throw omgError('OMG_ERR_INTERNAL', { reason: `${this.spec.file}: missing inputs ${missing.join(', ')}` });
    const ortFeeds: Record<string, ort.Tensor> = {};
    for (const name of this.session.inputNames) {
      const t = feeds[name] as Tensor;
      const meta = this.session.inputMetadata.find((m) => m.name === name);
      const want = meta && meta.isTensor ? INPUT_TYPES[meta.type] : undefined;
      if (want && want !== t.type) {
        throw omgError('OMG_ERR_INTERNAL', { reason: `${this.spec.file}: input ${name} is ${t.type}, the graph expects ${want}` });
      }
      ortFeeds[name] = t.type === 'bool' ? new ort.Tensor('bool', t.data, t.dims) : new ort.Tensor(t.type, t.data, t.dims);
    }
    let out: ort.InferenceSession.ReturnType;
    try {
      out = await this.session.run(ortFeeds);
    } catch (err) {
      const described = this.session.inputNames.map((n) => `${n}: ${feeds[n]?.type} [${feeds[n]?.dims.join(',')}]`).join('; ');
      throw omgError('OMG_ERR_INTERNAL', { reason: `${this.spec.file} failed to run with ${described}: ${String(err)}` }, err);
    }
    const result: Record<string, Tensor> = {};
    for (const [name, value] of Object.entries(out)) {
      const t = value as ort.Tensor;
      const dims = [...t.dims];
      if (t.type === 'float32') result[name] = { type: 'float32', dims, data: t.data as Float32Array };
      else if (t.type === 'int64') result[name] = { type: 'int64', dims, data: t.data as BigInt64Array };
      else if (t.type === 'bool') result[name] = { type: 'bool', dims, data: t.data as Uint8Array };
      else throw omgError('OMG_ERR_BUNDLE_INVALID', { reason: `${this.spec.file} output ${name} has unsupported type ${t.type}` });
    }
    return result;
  }

  async dispose(): Promise<void> {
    await this.session.release();
  }
}
