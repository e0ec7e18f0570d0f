"""InternLM2 decoder: against a naive per-head computation, and cache == no cache."""
import math

import torch

from omg_llava.config import LlmConfig
from omg_llava.llm import InternLM2

CFG = LlmConfig(hidden_size=32, num_layers=2, num_heads=4, num_kv_heads=2, head_dim=8,
                intermediate_size=48, vocab_rows=50, rope_theta=10_000.0)


def make_model(seed=0):
    torch.manual_seed(seed)
    model = InternLM2(CFG).eval()
    with torch.no_grad():  # non-trivial norm weights so a wrong norm shows up
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.uniform_(0.5, 1.5)
    return model


def naive_forward(model, x):
    """Full-sequence forward written head by head from the spec's wqkv row layout. x [T,D] -> logits, hidden."""
    T = x.shape[0]
    group, Dh = CFG.num_heads // CFG.num_kv_heads, CFG.head_dim

    def rms(v, w):
        return w * v / torch.sqrt((v * v).mean(-1, keepdim=True) + CFG.rms_eps)

    def rope(v):  # v [T,Dh]; pair (i, i + Dh/2) rotates by pos * theta^(-2i/Dh)
        out = v.clone()
        for t in range(T):
            for i in range(Dh // 2):
                a = t * CFG.rope_theta ** (-2 * i / Dh)
                x1, x2 = v[t, i], v[t, i + Dh // 2]
                out[t, i] = x1 * math.cos(a) - x2 * math.sin(a)
                out[t, i + Dh // 2] = x2 * math.cos(a) + x1 * math.sin(a)
        return out

    for layer in model.model.layers:
        h = rms(x, layer.attention_norm.weight)
        W = layer.attention.wqkv.weight  # rows: per KV group g, slots [q_0..q_{group-1}, k, v], Dh rows each
        heads = []
        for head in range(CFG.num_heads):
            g, s = divmod(head, group)
            rows = lambda slot: W[(g * (group + 2) + slot) * Dh:(g * (group + 2) + slot + 1) * Dh]
            q, k, v = rope(h @ rows(s).T), rope(h @ rows(group).T), h @ rows(group + 1).T
            scores = q @ k.T / math.sqrt(Dh)
            scores = scores + torch.triu(torch.full((T, T), float("-inf")), diagonal=1)
            heads.append(torch.softmax(scores, -1) @ v)
        x = x + torch.cat(heads, -1) @ layer.attention.wo.weight.T
        h = rms(x, layer.ffn_norm.weight)
        ff = layer.feed_forward
        x = x + (torch.nn.functional.silu(h @ ff.w1.weight.T) * (h @ ff.w3.weight.T)) @ ff.w2.weight.T
    hidden = rms(x, model.model.norm.weight)
    return hidden @ model.output.weight.T, hidden


def run(model, embeds, start, past):
    B, T, _ = embeds.shape
    pos = torch.arange(start, start + T)[None].expand(B, T)
    mask = torch.ones(B, start + T, dtype=torch.int64)
    return model(embeds, pos, mask, past)


def test_matches_naive_computation():
    model = make_model()
    x = torch.randn(1, 7, CFG.hidden_size)
    with torch.no_grad():
        logits, hidden, present = run(model, x, 0, None)
        ref_logits, ref_hidden = naive_forward(model, x[0])
    assert torch.allclose(logits[0], ref_logits, atol=1e-5)
    assert torch.allclose(hidden[0], ref_hidden, atol=1e-5)
    assert present[0][0].shape == (1, CFG.num_kv_heads, 7, CFG.head_dim)


def test_cache_equals_no_cache():
    model = make_model(1)
    x = torch.randn(2, 9, CFG.hidden_size)
    with torch.no_grad():
        full_logits, full_hidden, full_present = run(model, x, 0, None)
        _, _, past = run(model, x[:, :5], 0, None)
        logits, hidden = [], []
        for t in range(5, 9):  # one token at a time, like greedy decoding
            lg, hd, past = run(model, x[:, t:t + 1], t, past)
            logits.append(lg)
            hidden.append(hd)
    assert torch.allclose(torch.cat(logits, 1), full_logits[:, 5:], atol=1e-5)
    assert torch.allclose(torch.cat(hidden, 1), full_hidden[:, 5:], atol=1e-5)
    for (k, v), (fk, fv) in zip(past, full_present):
        assert torch.allclose(k, fk, atol=1e-5) and torch.allclose(v, fv, atol=1e-5)


def test_padding_in_attention_mask_hides_keys():
    model = make_model(2)
    x = torch.randn(1, 6, CFG.hidden_size)
    with torch.no_grad():
        mask = torch.tensor([[0, 0, 1, 1, 1, 1]])
        pos = torch.tensor([[0, 0, 0, 1, 2, 3]])
        padded, _, _ = model(x, pos, mask)
        alone, _, _ = run(model, x[:, 2:], 0, None)
    assert torch.allclose(padded[:, 2:], alone, atol=1e-5)


def test_wqkv_layout_is_grouped_per_kv_head():
    """Zeroing one group's key rows must change only the query heads of that group."""
    model = make_model(3)
    attn = model.model.layers[0].attention
    group, Dh = CFG.num_heads // CFG.num_kv_heads, CFG.head_dim
    x = torch.randn(1, 4, CFG.hidden_size)
    with torch.no_grad():
        model.model.layers[0].attention.wo.weight.copy_(torch.eye(CFG.hidden_size))  # expose per-head outputs
        cos, sin = model.rotary(torch.arange(4)[None])
        allowed = torch.ones(1, 1, 4, 4, dtype=torch.bool).tril()
        empty = torch.zeros(1, CFG.num_kv_heads, 0, Dh)
        before, _, _ = attn(x, cos, sin, allowed, empty, empty)
        g = 1
        attn.wqkv.weight[(g * (group + 2) + group) * Dh:(g * (group + 2) + group + 1) * Dh] = 0
        after, _, _ = attn(x, cos, sin, allowed, empty, empty)
    changed = [not torch.allclose(before[..., h * Dh:(h + 1) * Dh], after[..., h * Dh:(h + 1) * Dh])
               for h in range(CFG.num_heads)]
    assert changed == [h // group == g for h in range(CFG.num_heads)]
