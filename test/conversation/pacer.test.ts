import { describe, expect, it } from 'vitest';
import { Pacer } from '../../src/conversation/pacer.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('Pacer', () => {
  it('writes at most once per interval, coalescing updates, and the final write waits its turn', async () => {
    const writes: { text: string; at: number }[] = [];
    const start = Date.now();
    const pacer = new Pacer(200, async (text) => { writes.push({ text, at: Date.now() - start }); }, (err) => { throw err; });
    for (let i = 1; i <= 10; i++) {
      pacer.update(`t${i}`);
      await sleep(45);
    }
    const final = await pacer.finish(async () => { writes.push({ text: 'final', at: Date.now() - start }); return 'done'; });
    expect(final).toBe('done');
    expect(writes[0]!.text).toBe('t1');
    expect(writes.at(-1)!.text).toBe('final');
    expect(writes.length).toBeLessThanOrEqual(5); // 10 updates over ~450 ms at 200 ms pacing
    for (let i = 1; i < writes.length; i++) expect(writes[i]!.at - writes[i - 1]!.at).toBeGreaterThanOrEqual(195);
  });

  it('reports a failed edit and keeps going', async () => {
    const errors: unknown[] = [];
    let calls = 0;
    const pacer = new Pacer(50, async () => { calls++; if (calls === 1) throw new Error('edit refused'); }, (err) => errors.push(err));
    pacer.update('a');
    await sleep(20);
    pacer.update('b');
    await sleep(100);
    await pacer.finish(async () => undefined);
    expect(errors).toHaveLength(1);
    expect(calls).toBe(2);
  });
});
