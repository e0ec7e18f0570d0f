// The TurnService the bots call: one user message in, one answer out. It takes in the image (or the one the
// conversation already has), works out the request, resolves "#n" to stored masks, puts a versioned job on the
// queue, forwards progress, and records the answer and its masks as the conversation's next numbered regions.
// Turns of one conversation run one after another: each turn's history and region numbers depend on the last.
import type { Config } from '../config.js';
import { isErrorCode, omgError, toOmgError } from '../errors.js';
import type { Logger } from '../log.js';
import type { BlobStore } from '../queue/blobs.js';
import { jobIdFor, type JobPrompt, type ProgressEvent, type TurnJobV1, type TurnResultV1 } from '../queue/job.js';
import type { TurnQueue } from '../queue/queue.js';
import { colourFor, type PaletteColour } from '../render/palette.js';
import { encode } from '../render/rle.js';
import { acceptImage } from './image.js';
import { parseIntent, toModelText, type IntentPrompt, type UserPrompt } from './intent.js';
import { conversationId, historyOf, type Conversation, type ConversationStore, type Platform, type StoredTurn } from './store.js';

export type { Platform, UserPrompt };

export interface SubmitInput {
  platform: Platform;
  channel: string;
  thread: string;
  eventId: string; // the platform's id of the message or interaction: a redelivery runs once
  userId: string;
  text: string;
  image?: { bytes: Uint8Array; name?: string; mime?: string };
  prompts?: UserPrompt[];
  legend?: boolean; // legend strip under the overlay; default: only for segment-everything
  onProgress?: (ev: ProgressEvent) => void;
  signal?: AbortSignal;
}

export interface ReplySegment {
  n: number; // region number, usable as "#n" in later turns
  phrase: string;
  span: [number, number] | null;
  colour: PaletteColour;
  bbox: [number, number, number, number];
  area: number;
  score: number;
  label?: string;
}

export interface TurnReply {
  conversationId: string;
  turnId: string;
  jobId: string;
  text: string;
  segments: ReplySegment[];
  overlay: { bytes: Uint8Array; mime: 'image/png' | 'image/webp' } | null;
  timings: Record<string, number>;
}

export type ServiceConfig = Pick<Config, 'MAX_IMAGE_BYTES' | 'MAX_IMAGE_PIXELS' | 'CONVERSATION_TTL_S'>;

export interface ServiceDeps {
  queue: TurnQueue;
  blobs: BlobStore;
  store: ConversationStore;
  logger: Logger;
}

export class TurnService {
  private readonly locks = new Map<string, Promise<unknown>>();

  constructor(
    private readonly config: ServiceConfig,
    private readonly deps: ServiceDeps,
  ) {}

  /** Throws OmgError for every user-facing failure (bad image, bad request, busy, timeout, cancelled, ...). */
  async submit(input: SubmitInput): Promise<TurnReply> {
    const id = conversationId(input.platform, input.channel, input.thread);
    return this.serialised(id, () => this.runTurn(id, input));
  }

  /** Cancels the turn started by a platform event; false when it had already finished or is unknown. */
  cancel(platform: Platform, eventId: string): Promise<boolean> {
    return this.deps.queue.cancel(jobIdFor(platform, eventId));
  }

  conversation(platform: Platform, channel: string, thread: string): Promise<Conversation | null> {
    return this.deps.store.get(conversationId(platform, channel, thread));
  }

  /** Stored bytes by hash (conversation images, overlays), for the bots' file links. */
  blob(hash: string): Promise<Uint8Array | null> {
    return this.deps.blobs.get(hash);
  }

  private async runTurn(id: string, input: SubmitInput): Promise<TurnReply> {
    const { queue } = this.deps;
    const jobId = jobIdFor(input.platform, input.eventId);
    const conversation = await this.conversationFor(id, input);
    const known = conversation.turns.find((t) => t.id === jobId);
    if (known?.status === 'done') return this.replyFromStore(conversation, known);
    // A redelivered event of a turn that failed gets the same answer; one still queued or running is waited for again.
    if (known && known.status !== 'queued' && known.status !== 'running') {
      throw omgError(isErrorCode(known.error) ? known.error : 'OMG_ERR_INTERNAL');
    }

    const turn = known ?? this.newTurn(conversation, input, jobId);
    const job = this.jobFor(conversation, turn, input);
    // The queue refuses a new job past MAX_QUEUE_DEPTH (OMG_ERR_BUSY with the place it would have had).
    // The turn is stored once the queue took the job, so a refused job leaves no turn behind. Watch after enqueue
    // (a queue only knows a job once it is added); both queues start a job on a later tick, and a watcher gets
    // the job's current state first, so no event is missed.
    await queue.enqueue(job);
    if (!known) {
      conversation.turns.push(turn);
      await this.save(conversation);
    }
    let statusWrite: Promise<void> = Promise.resolve();
    const stopWatching = queue.watch(jobId, (ev) => {
      if (ev.type === 'started') {
        statusWrite = statusWrite
          .then(() => this.updateTurn(id, jobId, (t) => (t.status = 'running')))
          .catch((err: unknown) => this.deps.logger.warn({ err, jobId }, 'could not mark the turn as running'));
      }
      input.onProgress?.(ev);
    });
    const onAbort = () => void queue.cancel(jobId);
    input.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      if (input.signal?.aborted) onAbort();
      const result = await queue.wait(jobId);
      await statusWrite;
      return await this.record(id, jobId, job, result);
    } catch (err) {
      const error = toOmgError(err);
      await statusWrite;
      await this.updateTurn(id, jobId, (t) => {
        t.status = error.code === 'OMG_ERR_CANCELLED' ? 'cancelled' : 'failed';
        t.error = error.code;
      });
      throw error;
    } finally {
      stopWatching();
      input.signal?.removeEventListener('abort', onAbort);
    }
  }

  /** The stored conversation, or a new one when the message brings an image (a new image starts over). */
  private async conversationFor(id: string, input: SubmitInput): Promise<Conversation> {
    const stored = await this.deps.store.get(id);
    if (!input.image) {
      if (!stored) throw omgError('OMG_ERR_NO_IMAGE');
      if (!(await this.deps.blobs.get(stored.image.hash))) throw omgError('OMG_ERR_IMAGE_EXPIRED');
      return stored;
    }
    const image = await acceptImage(input.image.bytes, { maxBytes: this.config.MAX_IMAGE_BYTES, maxPixels: this.config.MAX_IMAGE_PIXELS });
    await this.deps.blobs.put(image.hash, image.bytes, this.config.CONVERSATION_TTL_S);
    if (stored && stored.image.hash === image.hash) return stored;
    const now = Date.now();
    return {
      id,
      platform: input.platform,
      channel: input.channel,
      thread: input.thread,
      image: { hash: image.hash, mime: image.mime, width: image.width, height: image.height },
      turns: [],
      regions: [],
      createdAt: now,
      updatedAt: now,
    };
  }

  private newTurn(conversation: Conversation, input: SubmitInput, jobId: string): StoredTurn {
    const { width, height } = conversation.image;
    const request = parseIntent(input.text, { width, height, regionCount: conversation.regions.length, prompts: input.prompts });
    const { text, prompts } = toModelText(request);
    return {
      id: jobId,
      userId: input.userId,
      userText: input.text,
      task: request.kind === 'everything' ? 'everything' : 'chat',
      text,
      prompts: prompts.map((p) => this.jobPrompt(conversation, p)),
      status: 'queued',
      createdAt: Date.now(),
    };
  }

  private jobPrompt(conversation: Conversation, prompt: IntentPrompt): JobPrompt {
    if (prompt.kind === 'mask') return { kind: 'mask', rle: encode(prompt.mask) };
    if (prompt.kind !== 'region') return prompt;
    const region = conversation.regions.find((r) => r.n === prompt.n);
    if (!region) throw omgError('OMG_ERR_UNKNOWN_REGION', { region: prompt.n, count: conversation.regions.length });
    // An answer's mask can be empty (asked to segment something the image lacks); the model would describe noise.
    if (region.area === 0) {
      throw omgError('OMG_ERR_BAD_REQUEST', { correction: `Region #${region.n} is empty: nothing was found for it, so there is nothing to describe.` });
    }
    return { kind: 'mask', rle: region.rle };
  }

  private jobFor(conversation: Conversation, turn: StoredTurn, input: SubmitInput): TurnJobV1 {
    const earlier = { ...conversation, turns: conversation.turns.filter((t) => t.id !== turn.id) };
    return {
      v: 1,
      id: turn.id,
      conversationId: conversation.id,
      image: { hash: conversation.image.hash, width: conversation.image.width, height: conversation.image.height },
      task: turn.task,
      text: turn.text,
      prompts: turn.prompts,
      history: historyOf(earlier),
      render: { legend: input.legend ?? turn.task === 'everything', firstRegion: conversation.regions.length + 1 },
    };
  }

  /** Stores the answer and numbers its masks from the job's firstRegion on. */
  private async record(id: string, jobId: string, job: TurnJobV1, result: TurnResultV1): Promise<TurnReply> {
    const first = job.render.firstRegion ?? 1;
    const conversation = await this.deps.store.get(id);
    if (!conversation) throw omgError('OMG_ERR_INTERNAL', { reason: `conversation ${id} vanished during a turn` });
    const turn = conversation.turns.find((t) => t.id === jobId);
    if (!turn) throw omgError('OMG_ERR_INTERNAL', { reason: `turn ${jobId} vanished` });
    // Regions from `first` on can only be this turn's own from an earlier try (turns are serialised): replace them.
    conversation.regions = conversation.regions.filter((r) => r.n < first);
    result.segments.forEach((s, i) => {
      const region = { n: first + i, turnId: jobId, phrase: s.phrase || s.label || '', bbox: s.bbox, area: s.area, score: s.score, rle: s.rle };
      conversation.regions.push(s.label === undefined ? region : { ...region, label: s.label });
    });
    turn.status = 'done';
    turn.raw = result.raw;
    turn.answer = result.text;
    turn.regions = result.segments.map((_, i) => first + i);
    turn.segments = result.segments.map((s) => ({ phrase: s.phrase, span: s.span }));
    turn.timings = result.timings;
    if (result.overlay) turn.overlay = { hash: result.overlay.hash, mime: result.overlay.mime };
    await this.save(conversation);
    return this.replyFromStore(conversation, turn);
  }

  private async replyFromStore(conversation: Conversation, turn: StoredTurn): Promise<TurnReply> {
    const numbers = turn.regions ?? [];
    const segments = numbers.map((n, i): ReplySegment => {
      const region = conversation.regions.find((r) => r.n === n)!;
      const span = turn.segments?.[i]?.span ?? null;
      const segment: ReplySegment = { n, phrase: region.phrase, span, colour: colourFor(n), bbox: region.bbox, area: region.area, score: region.score };
      return region.label === undefined ? segment : { ...segment, label: region.label };
    });
    const overlayBytes = turn.overlay ? await this.deps.blobs.get(turn.overlay.hash) : null;
    return {
      conversationId: conversation.id,
      turnId: turn.id,
      jobId: turn.id,
      text: turn.answer ?? '',
      segments,
      overlay: overlayBytes && turn.overlay ? { bytes: overlayBytes, mime: turn.overlay.mime } : null,
      timings: turn.timings ?? {},
    };
  }

  private async updateTurn(id: string, jobId: string, change: (turn: StoredTurn) => void): Promise<void> {
    const conversation = await this.deps.store.get(id);
    const turn = conversation?.turns.find((t) => t.id === jobId);
    if (!conversation || !turn) return;
    change(turn);
    await this.save(conversation);
  }

  private save(conversation: Conversation): Promise<void> {
    conversation.updatedAt = Date.now();
    return this.deps.store.put(conversation);
  }

  /** Runs turns of one conversation one after another (in this process). */
  private serialised<T>(key: string, task: () => Promise<T>): Promise<T> {
    const previous = this.locks.get(key) ?? Promise.resolve();
    const next = previous.then(task);
    const tail = next.then(
      () => undefined,
      () => undefined,
    );
    this.locks.set(key, tail);
    void tail.then(() => {
      if (this.locks.get(key) === tail) this.locks.delete(key);
    });
    return next;
  }
}
