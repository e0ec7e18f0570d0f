import { describe, expect, it } from 'vitest';
import { createMetrics, metrics, observeTimings, recordCacheLookup } from '../src/metrics.js';

describe('metrics', () => {
  it('exposes the named metrics in the Prometheus text format', async () => {
    const m = createMetrics();
    m.queueDepth.set(3);
    observeTimings(m, { vision: 250, decode: 1500, decodeTokens: 12 });
    recordCacheLookup(m, 'image', true, 1024);
    recordCacheLookup(m, 'image', false, 2048);
    m.errorsTotal.inc({ code: 'OMG_ERR_TIMEOUT' });
    const text = await m.registry.metrics();
    expect(text).toContain('omg_queue_depth 3');
    expect(text).toContain('omg_job_stage_seconds_bucket{le="0.25",stage="vision"} 1');
    expect(text).toContain('omg_job_stage_seconds_sum{stage="decode"} 1.5');
    expect(text).not.toContain('stage="decodeTokens"');
    expect(text).toContain('omg_cache_requests_total{cache="image",result="hit"} 1');
    expect(text).toContain('omg_cache_requests_total{cache="image",result="miss"} 1');
    expect(text).toContain('omg_cache_bytes{cache="image"} 2048');
    expect(text).toContain('omg_errors_total{code="OMG_ERR_TIMEOUT"} 1');
  });

  it('keeps separate registries apart and adds process metrics to the shared one', async () => {
    const a = createMetrics();
    createMetrics().queueDepth.set(9);
    expect(await a.registry.metrics()).toContain('omg_queue_depth 0');
    expect(await metrics.registry.metrics()).toContain('process_cpu_user_seconds_total');
  });
});
