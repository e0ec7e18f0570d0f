// Public entry of the inference core: OMG-LLaVA over a model bundle (spec/bundle.md), in process (OmgLlava) or on a
// worker thread (InferenceClient). Everything else in this folder is internal.
export { OmgLlava, Chat } from './model.js';
export type { Answer, AskOptions, HistoryTurn, LoadOptions, ModelStats, Timings } from './model.js';
export { InferenceClient, RemoteChat } from './client.js';
export type { Manifest } from './bundle.js';
export type { CacheStats } from './caches.js';
export type { Segment } from './answer.js';
export type { Mask } from './postprocess.js';
export type { Region } from './panoptic.js';
export type { BinaryMask, VisualPrompt } from './prompts.js';
export type { GenerationOptions } from './sampler.js';
export type { Provider } from './session.js';
