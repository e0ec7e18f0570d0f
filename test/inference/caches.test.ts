import { describe, expect, it } from 'vitest';
import { ByteLru } from '../../src/inference/caches.js';

describe('ByteLru', () => {
  it('evicts the least recently used entries to stay within its byte bound, counting hits and misses', () => {
    const lru = new ByteLru<Uint8Array>(10, (v) => v.byteLength);
    lru.set('a', new Uint8Array(4));
    lru.set('b', new Uint8Array(4));
    expect(lru.get('a')).toBeDefined(); // a is now the most recent
    lru.set('c', new Uint8Array(4)); // 12 bytes > 10: b goes
    expect(lru.get('b')).toBeUndefined();
    expect(lru.get('c')).toBeDefined();
    expect(lru.stats()).toEqual({ hits: 2, misses: 1, bytes: 8, entries: 2, evictions: 1 });
  });

  it('does not keep a value larger than the bound, and replaces a key in place', () => {
    const lru = new ByteLru<Uint8Array>(10, (v) => v.byteLength);
    lru.set('big', new Uint8Array(11));
    lru.set('a', new Uint8Array(3));
    lru.set('a', new Uint8Array(5));
    expect(lru.stats()).toMatchObject({ bytes: 5, entries: 1 });
  });
});
