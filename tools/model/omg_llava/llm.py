"""InternLM2-style decoder with an explicit KV cache (spec §8.1).

Module names follow upstream InternLM2 (`model.tok_embeddings`, `model.layers.{i}.attention.wqkv`, ...,
`output`) so converted checkpoints load by name. `wqkv` keeps InternLM2's grouped row layout:
per KV group, the group's query heads, then its key, then its value (spec pitfall 24).

The forward is written to trace into ONNX with every batch and sequence dimension dynamic,
including an empty cache (L_past = 0).
"""
import torch
from torch import nn
import torch.nn.functional as F

from .config import LlmConfig


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        variance = x.pow(2).mean(-1, keepdim=True)
        return self.weight * (x * torch.rsqrt(variance + self.eps))


def rotate_half(x):
    """Rotate-half (non-interleaved) RoPE helper: [x1, x2] -> [-x2, x1]."""
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class RotaryEmbedding(nn.Module):
    def __init__(self, head_dim: int, theta: float):
        super().__init__()
        # Same float32 recipe as the Hugging Face InternLM2 code, so converted weights see the same angles.
        inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2).float() / head_dim))
        self.register_buffer("inv_freq", inv_freq, persistent=False)

    def forward(self, position_ids):
        """position_ids [B,T] int64 -> cos, sin [B,1,T,D_h]."""
        freqs = position_ids[..., None].float() * self.inv_freq        # [B,T,D_h/2]
        emb = torch.cat((freqs, freqs), dim=-1)[:, None]              # [B,1,T,D_h]
        return emb.cos(), emb.sin()


class Attention(nn.Module):
    def __init__(self, cfg: LlmConfig):
        super().__init__()
        self.num_heads, self.num_kv_heads, self.head_dim = cfg.num_heads, cfg.num_kv_heads, cfg.head_dim
        self.group = cfg.num_heads // cfg.num_kv_heads
        self.wqkv = nn.Linear(cfg.hidden_size, (cfg.num_heads + 2 * cfg.num_kv_heads) * cfg.head_dim, bias=False)
        self.wo = nn.Linear(cfg.num_heads * cfg.head_dim, cfg.hidden_size, bias=False)

    def expand_kv(self, kv):
        """[B,H_kv,L,D_h] -> [B,H,L,D_h], each KV head repeated for its group of query heads."""
        B, _, L, _ = kv.shape
        return kv[:, :, None].expand(B, self.num_kv_heads, self.group, L, self.head_dim).reshape(
            B, self.num_heads, L, self.head_dim)

    def forward(self, x, cos, sin, allowed, past_key, past_value):
        """x [B,T,D], cos/sin [B,1,T,D_h], allowed [B,1,T,L_past+T] bool, past [B,H_kv,L_past,D_h]
        -> (out [B,T,D], key, value [B,H_kv,L_past+T,D_h])."""
        B, T, _ = x.shape
        qkv = self.wqkv(x).view(B, T, self.num_kv_heads, self.group + 2, self.head_dim)
        q = qkv[:, :, :, : self.group].reshape(B, T, self.num_heads, self.head_dim).transpose(1, 2)  # [B,H,T,D_h]
        k = qkv[:, :, :, self.group].transpose(1, 2)                                                 # [B,H_kv,T,D_h]
        v = qkv[:, :, :, self.group + 1].transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        key = torch.cat((past_key, k), dim=2)                                                        # [B,H_kv,L,D_h]
        value = torch.cat((past_value, v), dim=2)
        # GQA: query head h reads KV head h // group.
        k_all = self.expand_kv(key)                                                                  # [B,H,L,D_h]
        v_all = self.expand_kv(value)
        scores = q @ k_all.transpose(-1, -2) / (self.head_dim ** 0.5)                               # [B,H,T,L]
        scores = scores.masked_fill(~allowed, torch.finfo(scores.dtype).min)
        out = F.softmax(scores, dim=-1) @ v_all                                                      # [B,H,T,D_h]
        out = out.transpose(1, 2).reshape(B, T, self.num_heads * self.head_dim)
        return self.wo(out), key, value


class FeedForward(nn.Module):
    def __init__(self, cfg: LlmConfig):
        super().__init__()
        self.w1 = nn.Linear(cfg.hidden_size, cfg.intermediate_size, bias=False)  # gate
        self.w3 = nn.Linear(cfg.hidden_size, cfg.intermediate_size, bias=False)  # up
        self.w2 = nn.Linear(cfg.intermediate_size, cfg.hidden_size, bias=False)  # down

    def forward(self, x):
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class DecoderLayer(nn.Module):
    def __init__(self, cfg: LlmConfig):
        super().__init__()
        self.attention_norm = RMSNorm(cfg.hidden_size, cfg.rms_eps)
        self.attention = Attention(cfg)
        self.ffn_norm = RMSNorm(cfg.hidden_size, cfg.rms_eps)
        self.feed_forward = FeedForward(cfg)

    def forward(self, x, cos, sin, allowed, past_key, past_value):
        h, key, value = self.attention(self.attention_norm(x), cos, sin, allowed, past_key, past_value)
        x = x + h
        x = x + self.feed_forward(self.ffn_norm(x))
        return x, key, value


class Backbone(nn.Module):
    """The `model.` part of InternLM2: embeddings, layers and the final norm."""

    def __init__(self, cfg: LlmConfig):
        super().__init__()
        self.tok_embeddings = nn.Embedding(cfg.vocab_rows, cfg.hidden_size)
        self.layers = nn.ModuleList(DecoderLayer(cfg) for _ in range(cfg.num_layers))
        self.norm = RMSNorm(cfg.hidden_size, cfg.rms_eps)


def causal_allowed(attention_mask, query_len: int):
    """attention_mask [B,L] (1 = real token) -> allowed [B,1,T,L] bool.

    The T queries are the last T of the L positions: query i may read key j when j <= L - T + i
    and key j is not padding.
    """
    L = attention_mask.shape[1]
    key_idx = torch.arange(L, device=attention_mask.device)                      # [L]
    query_idx = torch.arange(query_len, device=attention_mask.device) + (L - query_len)  # [T]
    causal = key_idx[None, :] <= query_idx[:, None]                                # [T,L]
    return causal[None, None] & attention_mask.bool()[:, None, None, :]


class InternLM2(nn.Module):
    """Decoder-only LLM. `model.*` and `output` mirror the upstream state-dict names."""

    def __init__(self, cfg: LlmConfig):
        super().__init__()
        self.cfg = cfg
        self.model = Backbone(cfg)
        self.output = nn.Linear(cfg.hidden_size, cfg.vocab_rows, bias=False)  # untied LM head
        self.rotary = RotaryEmbedding(cfg.head_dim, cfg.rope_theta)

    def empty_cache(self, batch: int = 1):
        """A cache of length 0: one (key, value) pair [B,H_kv,0,D_h] per layer."""
        shape = (batch, self.cfg.num_kv_heads, 0, self.cfg.head_dim)
        device = self.output.weight.device
        return [(torch.zeros(shape, device=device), torch.zeros(shape, device=device)) for _ in range(self.cfg.num_layers)]

    def forward(self, inputs_embeds, position_ids, attention_mask, past=None):
        """
        Arguments:
          inputs_embeds [B,T,D] float; position_ids [B,T] int64; attention_mask [B,L_past+T] int64;
          past: list of N_L (key, value) [B,H_kv,L_past,D_h], or None for an empty cache.
        Returns:
          logits [B,T,V], last_hidden [B,T,D] (after the final norm), present: list of (key, value) [B,H_kv,L_past+T,D_h].
        """
        if past is None:
            past = self.empty_cache(inputs_embeds.shape[0])
        cos, sin = self.rotary(position_ids)
        allowed = causal_allowed(attention_mask, inputs_embeds.shape[1])
        x = inputs_embeds
        present = []
        for layer, (past_key, past_value) in zip(self.model.layers, past):
            x, key, value = layer(x, cos, sin, allowed, past_key, past_value)
            present.append((key, value))
        last_hidden = self.model.norm(x)
        return self.output(last_hidden), last_hidden, present
