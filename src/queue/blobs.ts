// Content-addressed bytes (conversation images, rendered overlays) shared by the service and the workers:
// jobs carry the hash, never the bytes. Entries expire, so a store never grows without bound.
import type { Redis } from 'ioredis';

/** The key prefix of everything this service keeps in Redis (queue, blobs, conversations) unless a test picks another. */
export const REDIS_PREFIX = 'omg';

export interface BlobStore {
  put(hash: string, bytes: Uint8Array, ttlSec?: number): Promise<void>;
  /** The bytes, or null when unknown or expired. A read extends the lifetime of an entry still in use. */
  get(hash: string): Promise<Uint8Array | null>;
}

interface MemoryEntry {
  bytes: Uint8Array;
  ttlMs: number;
  expiresAt: number;
}

/** In-process store: TTL per entry and a byte bound that evicts the least recently used entries first. */
export class MemoryBlobStore implements BlobStore {
  private readonly entries = new Map<string, MemoryEntry>(); // insertion order = recency order
  private bytes = 0;

  constructor(private readonly opts: { defaultTtlSec: number; maxBytes: number; now?: () => number }) {}

  async put(hash: string, bytes: Uint8Array, ttlSec = this.opts.defaultTtlSec): Promise<void> {
    this.delete(hash);
    const ttlMs = ttlSec * 1000;
    this.entries.set(hash, { bytes, ttlMs, expiresAt: this.now() + ttlMs });
    this.bytes += bytes.byteLength;
    for (const [oldest] of this.entries) {
      if (this.bytes <= this.opts.maxBytes || oldest === hash) break;
      this.delete(oldest);
    }
  }

  async get(hash: string): Promise<Uint8Array | null> {
    const entry = this.entries.get(hash);
    if (!entry) return null;
    if (entry.expiresAt <= this.now()) {
      this.delete(hash);
      return null;
    }
    this.entries.delete(hash); // move to the most recent end
    this.entries.set(hash, { ...entry, expiresAt: this.now() + entry.ttlMs });
    return entry.bytes;
  }

  /** Bytes held, for the cache gauge. */
  size(): number {
    return this.bytes;
  }

  private delete(hash: string): void {
    const entry = this.entries.get(hash);
    if (!entry) return;
    this.bytes -= entry.bytes.byteLength;
    this.entries.delete(hash);
  }

  private now(): number {
    return (this.opts.now ?? Date.now)();
  }
}

/** Redis store: one key per blob with an expiry; reads refresh the expiry (GETEX). */
export class RedisBlobStore implements BlobStore {
  constructor(
    private readonly redis: Redis,
    private readonly opts: { prefix: string; defaultTtlSec: number },
  ) {}

  async put(hash: string, bytes: Uint8Array, ttlSec = this.opts.defaultTtlSec): Promise<void> {
    await this.redis.set(this.key(hash), Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), 'EX', ttlSec);
  }

  async get(hash: string): Promise<Uint8Array | null> {
    const buf = await this.redis.getexBuffer(this.key(hash), 'EX', this.opts.defaultTtlSec);
    return buf ? new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength) : null;
  }

  private key(hash: string): string {
    return `${this.opts.prefix}:blob:${hash}`;
  }
}
