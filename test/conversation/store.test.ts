import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import {
  conversationId,
  historyOf,
  MemoryConversationStore,
  RedisConversationStore,
  type Conversation,
  type ConversationStore,
} from '../../src/conversation/store.js';
import { encode } from '../../src/render/rle.js';
import { dropPrefix, freshPrefix, redisTestUrl } from '../helpers/redis.js';

function sample(id = conversationId('discord', 'c1', 't1')): Conversation {
  const rle = encode({ width: 3, height: 2, data: Uint8Array.from([0, 1, 1, 0, 1, 0]) });
  return {
    id,
    platform: 'discord',
    channel: 'c1',
    thread: 't1',
    image: { hash: 'a'.repeat(64), mime: 'image/png', width: 3, height: 2 },
    turns: [
      { id: 'turn-1', userId: 'u', userText: 'segment the dog', task: 'chat', text: 'Please segment the dog in this image.', prompts: [], status: 'done', raw: '<p> The dog </p> [SEG].<|im_end|>', answer: 'The dog.', regions: [1], createdAt: 1 },
      { id: 'turn-2', userId: 'u', userText: 'regions', task: 'everything', text: '', prompts: [], status: 'done', raw: '', regions: [2], createdAt: 2 },
      { id: 'turn-3', userId: 'u', userText: 'describe #1', task: 'chat', text: 'Can you ... region1 <region>?', prompts: [{ kind: 'mask', rle }], status: 'failed', error: 'OMG_ERR_TIMEOUT', createdAt: 3 },
    ],
    regions: [
      { n: 1, turnId: 'turn-1', phrase: 'The dog', bbox: [1, 0, 3, 2], area: 3, score: 0.9, rle },
      { n: 2, turnId: 'turn-2', phrase: 'sky', label: 'sky', bbox: [1, 0, 3, 2], area: 3, score: 0.8, rle },
    ],
    createdAt: 1,
    updatedAt: 3,
  };
}

function contract(name: string, make: () => Promise<{ store: ConversationStore; reopen: () => Promise<ConversationStore> }>) {
  describe(name, () => {
    it('stores, reads back and deletes a conversation', async () => {
      const { store } = await make();
      const conv = sample();
      expect(await store.get(conv.id)).toBeNull();
      await store.put(conv);
      expect(await store.get(conv.id)).toEqual(conv);
      const updated = { ...conv, turns: conv.turns.slice(0, 1), updatedAt: 9 };
      await store.put(updated);
      expect(await store.get(conv.id)).toEqual(updated);
      await store.delete(conv.id);
      expect(await store.get(conv.id)).toBeNull();
    });

    it('returns copies, so a caller cannot change stored state by accident', async () => {
      const { store } = await make();
      const conv = sample();
      await store.put(conv);
      conv.turns[0]!.status = 'failed';
      (await store.get(conv.id))!.regions.pop();
      const again = (await store.get(conv.id))!;
      expect(again.turns[0]!.status).toBe('done');
      expect(again.regions).toHaveLength(2);
    });

    it('keeps conversations across a restart', async () => {
      const { store, reopen } = await make();
      await store.put(sample());
      const fresh = await reopen();
      expect(await fresh.get(sample().id)).toEqual(sample());
    });
  });
}

describe('conversation store', () => {
  it('keys conversations by platform, channel and thread', () => {
    expect(conversationId('slack', 'C1', '1700000000.000100')).toBe('slack:C1:1700000000.000100');
  });

  it('rebuilds the history from finished chat turns only', () => {
    expect(historyOf(sample())).toEqual([{ text: 'Please segment the dog in this image.', prompts: [], raw: '<p> The dog </p> [SEG].<|im_end|>' }]);
  });

  it('expires memory entries after the TTL and bounds their number', async () => {
    let now = 0;
    const store = new MemoryConversationStore({ ttlSec: 10, maxEntries: 2, now: () => now });
    await store.put(sample('a'));
    await store.put(sample('b'));
    now = 5_000;
    await store.put(sample('a')); // a write restarts the TTL and makes 'a' the most recent
    await store.put(sample('c')); // over the bound: 'b' (least recently written) goes
    expect(await store.get('b')).toBeNull();
    now = 12_000;
    expect(await store.get('a')).not.toBeNull();
    now = 15_000;
    expect(await store.get('a')).toBeNull();
  });

  const memory = new MemoryConversationStore({ ttlSec: 60, maxEntries: 100 });
  contract('memory', async () => ({ store: memory, reopen: async () => memory }));

  const prefix = freshPrefix();
  const clients: Redis[] = [];
  const connect = () => {
    const redis = new Redis(redisTestUrl);
    clients.push(redis);
    return new RedisConversationStore(redis, { prefix, ttlSec: 60 });
  };
  contract('redis', async () => ({ store: connect(), reopen: async () => connect() }));

  it('sets the TTL in Redis on every write', async () => {
    const store = connect();
    await store.put(sample('ttl'));
    const ttl = await clients[0]!.ttl(`${prefix}:conv:ttl`);
    expect(ttl).toBeGreaterThan(50);
    expect(ttl).toBeLessThanOrEqual(60);
  });

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.quit()));
    await dropPrefix(prefix);
  });
});
