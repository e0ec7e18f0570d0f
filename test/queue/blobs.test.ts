import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { MemoryBlobStore, RedisBlobStore } from '../../src/queue/blobs.js';
import { dropPrefix, freshPrefix, redisTestUrl } from '../helpers/redis.js';

const bytes = (n: number, fill = 1) => new Uint8Array(n).fill(fill);

describe('MemoryBlobStore', () => {
  it('returns what was put, expires entries, and refreshes them on read', async () => {
    let now = 0;
    const store = new MemoryBlobStore({ defaultTtlSec: 10, maxBytes: 1000, now: () => now });
    await store.put('a', bytes(3));
    expect(await store.get('a')).toEqual(bytes(3));
    now = 9_000;
    expect(await store.get('a')).not.toBeNull(); // read at 9 s: lives until 19 s
    now = 18_000;
    expect(await store.get('a')).not.toBeNull();
    now = 40_000;
    expect(await store.get('a')).toBeNull();
    expect(await store.get('never')).toBeNull();
    expect(store.size()).toBe(0);
  });

  it('evicts least recently used entries beyond the byte bound', async () => {
    const store = new MemoryBlobStore({ defaultTtlSec: 60, maxBytes: 250 });
    await store.put('a', bytes(100));
    await store.put('b', bytes(100));
    await store.get('a'); // b is now the oldest
    await store.put('c', bytes(100));
    expect(await store.get('b')).toBeNull();
    expect(await store.get('a')).not.toBeNull();
    expect(await store.get('c')).not.toBeNull();
    expect(store.size()).toBe(200);
  });
});

describe('RedisBlobStore (real Redis)', () => {
  const prefix = freshPrefix();
  const redis = new Redis(redisTestUrl);
  afterAll(async () => {
    await dropPrefix(prefix);
    await redis.quit();
  });

  it('stores bytes with a TTL that reads refresh', async () => {
    const store = new RedisBlobStore(redis, { prefix, defaultTtlSec: 100 });
    const data = new Uint8Array([0, 255, 7, 0, 9]);
    await store.put('h1', data.subarray(1, 4), 5);
    expect(await redis.ttl(`${prefix}:blob:h1`)).toBeLessThanOrEqual(5);
    expect(await store.get('h1')).toEqual(new Uint8Array([255, 7, 0]));
    expect(await redis.ttl(`${prefix}:blob:h1`)).toBeGreaterThan(90);
    expect(await store.get('missing')).toBeNull();
  });
});
