// Bounded caches of the inference core: an LRU bounded in bytes, used for image passes (keyed by the image's
// sha256) and for per-conversation KV caches (keyed by chat id). Both count hits, misses and bytes.

export interface CacheStats { hits: number; misses: number; bytes: number; entries: number; evictions: number }

export class ByteLru<V> {
  private readonly entries = new Map<string, { value: V; bytes: number }>(); // Map order = least recently used first
  private counts = { hits: 0, misses: 0, bytes: 0, evictions: 0 };

  constructor(private readonly maxBytes: number, private readonly sizeOf: (value: V) => number) {}

  get(key: string): V | undefined {
    const entry = this.entries.get(key);
    if (!entry) {
      this.counts.misses++;
      return undefined;
    }
    this.counts.hits++;
    this.entries.delete(key);
    this.entries.set(key, entry);
    return entry.value;
  }

  /** Stores a value, evicting the least recently used ones; a value larger than the bound is not kept. */
  set(key: string, value: V): void {
    this.delete(key);
    const bytes = this.sizeOf(value);
    if (bytes > this.maxBytes) return;
    this.entries.set(key, { value, bytes });
    this.counts.bytes += bytes;
    for (const [oldest, entry] of this.entries) {
      if (this.counts.bytes <= this.maxBytes) break;
      this.entries.delete(oldest);
      this.counts.bytes -= entry.bytes;
      this.counts.evictions++;
    }
  }

  delete(key: string): void {
    const entry = this.entries.get(key);
    if (!entry) return;
    this.entries.delete(key);
    this.counts.bytes -= entry.bytes;
  }

  stats(): CacheStats {
    return { ...this.counts, entries: this.entries.size };
  }
}
