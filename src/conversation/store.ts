// Conversations: one per platform + channel + thread (or reply chain). A conversation holds its image's reference
// (the bytes live in the BlobStore under the hash), its turns and the numbered masks (#1, #2, ...) of earlier turns.
// Stored as JSON in Redis with a TTL refreshed on every write, or in memory when Redis is not configured.
import type { Redis } from 'ioredis';
import type { JobPrompt } from '../queue/job.js';
import type { Rle } from '../render/rle.js';

export type Platform = 'discord' | 'slack' | 'web' | 'cli';
export type TurnStatus = 'queued' | 'running' | 'done' | 'failed' | 'cancelled';

export interface StoredTurn {
  id: string; // the job id
  userId: string;
  userText: string; // as written
  task: 'chat' | 'everything';
  text: string; // as the model sees it, placeholders included
  prompts: JobPrompt[];
  status: TurnStatus;
  raw?: string; // the model's raw answer, for the history of later turns
  answer?: string;
  regions?: number[]; // numbers of the masks this turn produced
  segments?: { phrase: string; span: [number, number] | null }[]; // where each of those masks sits in the answer
  overlay?: { hash: string; mime: 'image/png' | 'image/webp' }; // in the BlobStore
  timings?: Record<string, number>;
  error?: string; // error code of a failed turn
  createdAt: number;
}

export interface StoredRegion {
  n: number; // #n, from 1
  turnId: string;
  phrase: string;
  label?: string;
  bbox: [number, number, number, number];
  area: number;
  score: number;
  rle: Rle;
}

export interface Conversation {
  id: string;
  platform: Platform;
  channel: string;
  thread: string;
  image: { hash: string; mime: string; width: number; height: number };
  turns: StoredTurn[];
  regions: StoredRegion[];
  createdAt: number;
  updatedAt: number;
}

export interface ConversationStore {
  get(id: string): Promise<Conversation | null>;
  /** Writes the conversation and restarts its time to live. */
  put(conversation: Conversation): Promise<void>;
  delete(id: string): Promise<void>;
}

export function conversationId(platform: Platform, channel: string, thread: string): string {
  return `${platform}:${channel}:${thread}`;
}

/** Earlier turns the model should remember: finished chat turns, in order (segment-everything does not talk). */
export function historyOf(conversation: Conversation): { text: string; prompts: JobPrompt[]; raw: string }[] {
  return conversation.turns
    .filter((t) => t.status === 'done' && t.task === 'chat' && t.raw !== undefined)
    .map((t) => ({ text: t.text, prompts: t.prompts, raw: t.raw! }));
}

/** In-process store: entries expire after the TTL and the least recently written go first past `maxEntries`. */
export class MemoryConversationStore implements ConversationStore {
  private readonly entries = new Map<string, { json: string; expiresAt: number }>(); // insertion order = write order

  constructor(private readonly opts: { ttlSec: number; maxEntries: number; now?: () => number }) {}

  async get(id: string): Promise<Conversation | null> {
    const entry = this.entries.get(id);
    if (!entry) return null;
    if (entry.expiresAt <= this.now()) {
      this.entries.delete(id);
      return null;
    }
    return JSON.parse(entry.json) as Conversation; // a copy: callers cannot change the stored state by accident
  }

  async put(conversation: Conversation): Promise<void> {
    this.entries.delete(conversation.id);
    this.entries.set(conversation.id, { json: JSON.stringify(conversation), expiresAt: this.now() + this.opts.ttlSec * 1000 });
    for (const [oldest] of this.entries) {
      if (this.entries.size <= this.opts.maxEntries) break;
      this.entries.delete(oldest);
    }
  }

  async delete(id: string): Promise<void> {
    this.entries.delete(id);
  }

  private now(): number {
    return (this.opts.now ?? Date.now)();
  }
}

export class RedisConversationStore implements ConversationStore {
  constructor(
    private readonly redis: Redis,
    private readonly opts: { prefix: string; ttlSec: number },
  ) {}

  async get(id: string): Promise<Conversation | null> {
    const json = await this.redis.get(this.key(id));
    return json === null ? null : (JSON.parse(json) as Conversation);
  }

  async put(conversation: Conversation): Promise<void> {
    await this.redis.set(this.key(conversation.id), JSON.stringify(conversation), 'EX', this.opts.ttlSec);
  }

  async delete(id: string): Promise<void> {
    await this.redis.del(this.key(id));
  }

  private key(id: string): string {
    return `${this.opts.prefix}:conv:${id}`;
  }
}
