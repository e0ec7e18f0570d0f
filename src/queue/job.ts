// The turn job: what the service puts on the queue and what a worker gives back. Payloads are versioned and carry
// ids and references only (the image lives in the BlobStore under its hash), never tokens or platform objects.
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { omgError } from '../errors.js';
import type { Rle } from '../render/rle.js';

export type JobPrompt =
  | { kind: 'point'; x: number; y: number }
  | { kind: 'box'; x1: number; y1: number; x2: number; y2: number }
  | { kind: 'mask'; rle: Rle }; // original-pixel coordinates (already resolved from normalised)

export interface TurnJobV1 {
  v: 1;
  id: string; // = jobIdFor(platform, eventId): deterministic, so redelivery runs once
  conversationId: string;
  image: { hash: string; width: number; height: number }; // bytes live in the BlobStore under the hash
  task: 'chat' | 'everything';
  text: string; // model text of this turn, placeholders included
  prompts: JobPrompt[];
  history: { text: string; prompts: JobPrompt[]; raw: string }[]; // earlier turns, to rebuild the KV cache on any worker
  // firstRegion: the conversation's number (#n) of this turn's first mask, so overlay colours and labels match
  // the numbers the reply shows; 1 when absent.
  render: { legend: boolean; firstRegion?: number };
}

export interface ResultSegment {
  phrase: string;
  span: [number, number] | null;
  label?: string;
  bbox: [number, number, number, number];
  area: number;
  score: number;
  rle: Rle;
}

export interface TurnResultV1 {
  v: 1;
  text: string;
  raw: string;
  segments: ResultSegment[];
  overlay: { hash: string; mime: 'image/png' | 'image/webp'; bytes: number } | null; // rendered by the worker, in the BlobStore
  timings: Record<string, number>;
  usage: { promptTokens: number; newTokens: number; cachedTokens: number };
}

/** position: 1 = next to run. A 'started' after 'text' events means a retry began and the text starts over. */
export type ProgressEvent =
  | { type: 'queued'; position: number }
  | { type: 'started' }
  | { type: 'text'; delta: string }
  | { type: 'done'; result: TurnResultV1 }
  | { type: 'failed'; code: string; message: string }
  | { type: 'cancelled' };

const coord = z.number().finite().nonnegative();
const rleSchema = z.object({
  size: z.tuple([z.number().int().positive(), z.number().int().positive()]),
  counts: z.array(z.number().int().nonnegative()),
});
const promptSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('point'), x: coord, y: coord }),
  z.object({ kind: z.literal('box'), x1: coord, y1: coord, x2: coord, y2: coord }),
  z.object({ kind: z.literal('mask'), rle: rleSchema }),
]);
const turnJobSchema = z.object({
  v: z.literal(1),
  id: z.string().min(1),
  conversationId: z.string().min(1),
  image: z.object({ hash: z.string().regex(/^[0-9a-f]{64}$/), width: z.number().int().positive(), height: z.number().int().positive() }),
  task: z.enum(['chat', 'everything']),
  text: z.string(),
  prompts: z.array(promptSchema),
  history: z.array(z.object({ text: z.string(), prompts: z.array(promptSchema), raw: z.string() })),
  render: z.object({ legend: z.boolean(), firstRegion: z.number().int().positive().optional() }),
});

/** Worker-side check of a payload read from the queue; a bad or outdated payload is unrecoverable. */
export function parseTurnJob(data: unknown): TurnJobV1 {
  const parsed = turnJobSchema.safeParse(data);
  if (!parsed.success) {
    throw omgError('OMG_ERR_JOB_INVALID', { issues: parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`) });
  }
  return parsed.data as TurnJobV1;
}

/**
 * The job id of a platform event: the same event (a redelivered Discord interaction, a retried Slack event)
 * always maps to the same id, so the queue runs it once. Hex only: BullMQ ids must not contain ':' or be integers.
 */
export function jobIdFor(platform: string, eventId: string): string {
  const digest = createHash('sha256').update(`${platform}\u0000${eventId}`).digest('hex');
  return `turn-${digest.slice(0, 32)}`;
}
