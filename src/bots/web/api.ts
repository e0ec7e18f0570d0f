// The playground's JSON API. Handlers only translate HTTP to TurnService calls and back: every model turn goes
// through the queue, so a request never runs inference itself.
//   POST /api/conversations                 multipart field `image`            -> 201 { id, width, height }
//   POST /api/conversations/:id/ask         JSON { text, prompts? }            -> { id, text, segments, overlayUrl, timings }
//        (with `Accept: application/x-ndjson` the reply streams progress events, one JSON object a line, ending
//         with { type: 'reply', reply } or { type: 'error', error })
//   GET  /api/conversations/:id/image          the conversation's image as the model sees it
//   GET  /api/conversations/:id/masks/:n.png   region #n as a binary PNG at the image's original size
//   GET  /api/conversations/:id/turns/:turn/overlay   the overlay rendered for that turn
import { randomUUID } from 'node:crypto';
import { PassThrough } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { acceptImage, type ImageLimits } from '../../conversation/image.js';
import type { TurnReply, TurnService, UserPrompt } from '../../conversation/service.js';
import { omgError, type OmgError } from '../../errors.js';
import type { ProgressEvent } from '../../queue/job.js';
import { maskPng } from '../../render/cutout.js';
import { decode } from '../../render/rle.js';
import { toHttpError } from './http-errors.js';
import type { Uploads } from './uploads.js';

/** Every playground conversation lives in one channel; the conversation id is the thread. */
export const PLATFORM = 'web';
export const CHANNEL = 'playground';
const USER = 'playground';

const coordinate = z.number().finite().min(0);
const promptSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('point'), x: coordinate, y: coordinate, normalized: z.boolean().optional() }),
  z.object({ kind: z.literal('box'), x1: coordinate, y1: coordinate, x2: coordinate, y2: coordinate, normalized: z.boolean().optional() }),
  z.object({ kind: z.literal('region'), n: z.number().int().min(1) }),
]);
// An empty text with prompts is a question too: the intent parser turns it into a region description.
const askSchema = z
  .object({ text: z.string().trim().max(4000).default(''), prompts: z.array(promptSchema).max(16).default([]) })
  .refine((b) => b.text !== '' || b.prompts.length > 0);
const idSchema = z.uuid();

export interface ApiDeps {
  service: TurnService;
  uploads: Uploads;
  limits: ImageLimits;
}

export interface ReplyJson {
  id: string;
  text: string;
  segments: {
    n: number;
    phrase: string;
    span: [number, number] | null;
    label?: string;
    colour: { hex: string; name: string };
    bbox: [number, number, number, number];
    area: number;
    score: number;
    maskUrl: string;
  }[];
  overlayUrl: string | null;
  timings: Record<string, number>;
}

export function registerApi(app: FastifyInstance, deps: ApiDeps): void {
  const { service, uploads } = deps;

  app.post('/api/conversations', async (req, reply) => {
    const image = await acceptImage(await readImageField(req, deps.limits.maxBytes), deps.limits);
    const id = randomUUID();
    uploads.add(id, { bytes: image.bytes, mime: image.mime, width: image.width, height: image.height });
    return reply.code(201).send({ id, width: image.width, height: image.height });
  });

  app.post<{ Params: { id: string } }>('/api/conversations/:id/ask', async (req, reply) => {
    const id = conversationId(req.params.id);
    const body = askSchema.safeParse(req.body);
    if (!body.success) {
      throw omgError('OMG_ERR_BAD_REQUEST', {
        correction: 'Send JSON { "text": "your question", "prompts": [{ "kind": "point", "x": 10, "y": 20 }] } (prompts are optional).',
      });
    }
    const pending = uploads.get(id);
    if (!pending && !(await service.conversation(PLATFORM, CHANNEL, id))) return sendError(reply, omgError('OMG_ERR_NO_IMAGE'), 404);

    // A closed connection cancels the turn, whether it is still queued or already running.
    const abort = new AbortController();
    reply.raw.on('close', () => {
      if (!reply.raw.writableFinished) abort.abort();
    });
    const submit = (onProgress?: (ev: ProgressEvent) => void) =>
      service
        .submit({
          platform: PLATFORM, channel: CHANNEL, thread: id, eventId: randomUUID(), userId: USER,
          text: body.data.text, prompts: body.data.prompts as UserPrompt[],
          ...(pending ? { image: { bytes: pending.bytes, mime: pending.mime, name: pending.name } } : {}),
          ...(onProgress ? { onProgress } : {}), signal: abort.signal,
        })
        .then((turn) => {
          // The conversation now holds the image; the upload is no longer needed.
          if (pending) uploads.delete(id);
          return replyJson(id, turn);
        });

    if (!wantsStream(req)) return submit();
    const stream = new PassThrough();
    const write = (event: object) => stream.write(`${JSON.stringify(event)}\n`);
    submit((ev) => {
      // The final result is sent once, in web form, below.
      if (ev.type !== 'done') write(ev.type === 'failed' ? { type: 'error', error: { code: ev.code, message: ev.message } } : ev);
    })
      .then((json) => write({ type: 'reply', reply: json }))
      .catch((err: unknown) => {
        const { body: errBody, error } = toHttpError(err);
        if (error.code === 'OMG_ERR_INTERNAL') req.log.error({ err }, 'turn failed');
        write({ type: 'error', ...errBody });
      })
      .finally(() => stream.end());
    return reply.type('application/x-ndjson').header('cache-control', 'no-cache').header('x-accel-buffering', 'no').send(stream);
  });

  // The image as the model sees it (GIF, TIFF and rotated photos arrive as upright PNGs), for the page to draw on.
  app.get<{ Params: { id: string } }>('/api/conversations/:id/image', async (req, reply) => {
    const id = conversationId(req.params.id);
    const pending = uploads.get(id);
    const stored = pending ? null : (await service.conversation(PLATFORM, CHANNEL, id))?.image;
    const bytes = pending?.bytes ?? (stored ? await service.blob(stored.hash) : null);
    const mime = pending?.mime ?? stored?.mime;
    if (!bytes || !mime) return sendError(reply, omgError('OMG_ERR_NO_IMAGE'), 404);
    return reply.type(mime).header('cache-control', 'private, max-age=3600').send(Buffer.from(bytes));
  });

  app.get<{ Params: { id: string; n: string } }>('/api/conversations/:id/masks/:n.png', async (req, reply) => {
    const id = conversationId(req.params.id);
    const n = Number(req.params.n);
    const conversation = await service.conversation(PLATFORM, CHANNEL, id);
    const region = conversation?.regions.find((r) => r.n === n);
    if (!region) return sendError(reply, omgError('OMG_ERR_UNKNOWN_REGION', { region: req.params.n }));
    return reply.type('image/png').header('cache-control', 'private, max-age=3600').send(Buffer.from(await maskPng(decode(region.rle))));
  });

  app.get<{ Params: { id: string; turn: string } }>('/api/conversations/:id/turns/:turn/overlay', async (req, reply) => {
    const id = conversationId(req.params.id);
    const conversation = await service.conversation(PLATFORM, CHANNEL, id);
    const overlay = conversation?.turns.find((t) => t.id === req.params.turn)?.overlay;
    const bytes = overlay ? await service.blob(overlay.hash) : null;
    if (!overlay || !bytes) return sendError(reply, omgError('OMG_ERR_BAD_REQUEST', { correction: 'This turn has no overlay (or it has expired).' }), 404);
    return reply.type(overlay.mime).header('cache-control', 'private, max-age=3600').send(Buffer.from(bytes));
  });
}

// The multipart body must carry the image in the field `image`; the byte cap applies while streaming it in.
async function readImageField(req: FastifyRequest, maxBytes: number): Promise<Uint8Array> {
  const correction = 'Upload the image as multipart/form-data in the field "image".';
  if (!req.isMultipart()) throw omgError('OMG_ERR_BAD_REQUEST', { correction });
  const file = await req.file({ limits: { fileSize: maxBytes, files: 1 } });
  if (!file || file.fieldname !== 'image') throw omgError('OMG_ERR_BAD_REQUEST', { correction });
  return file.toBuffer().catch((err: unknown) => {
    if ((err as { code?: unknown }).code === 'FST_REQ_FILE_TOO_LARGE') throw omgError('OMG_ERR_IMAGE_TOO_LARGE', { limit: maxBytes });
    throw err;
  });
}

function conversationId(raw: string): string {
  if (!idSchema.safeParse(raw).success) throw omgError('OMG_ERR_BAD_REQUEST', { correction: 'That is not a playground conversation id.' });
  return raw;
}

function wantsStream(req: FastifyRequest): boolean {
  return (req.headers.accept ?? '').includes('application/x-ndjson');
}

function sendError(reply: FastifyReply, err: OmgError, status?: number): FastifyReply {
  const http = toHttpError(err);
  return reply.code(status ?? http.status).send(http.body);
}

function replyJson(id: string, turn: TurnReply): ReplyJson {
  const base = `/api/conversations/${id}`;
  return {
    id: turn.turnId,
    text: turn.text,
    segments: turn.segments.map((s) => ({
      n: s.n,
      phrase: s.phrase,
      span: s.span,
      ...(s.label !== undefined ? { label: s.label } : {}),
      colour: { hex: s.colour.hex, name: s.colour.name },
      bbox: s.bbox,
      area: s.area,
      score: s.score,
      maskUrl: `${base}/masks/${s.n}.png`,
    })),
    overlayUrl: turn.overlay ? `${base}/turns/${turn.turnId}/overlay` : null,
    timings: turn.timings,
  };
}
