"""Masked-attention decoder, heads and prompt queries of OMG-Seg (spec omg-llava.md §4.4, §7.1, §7.2).

`PanopticHead` mirrors upstream `panoptic_head`: pixel decoder, transformer decoder, mask/class heads and the
visual-prompt embeddings. Attention masks are bool, True = may not attend.
"""
import math

import torch
import torch.nn.functional as F
from torch import nn

from .pixel_decoder import FFN, PixelDecoder
from .positional import coordinate_to_encoding, sine_3d


def mlp(c_in, hidden, c_out):
    """3-layer MLP with ReLU (keys 0, 2, 4)."""
    return nn.Sequential(nn.Linear(c_in, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, c_out))


def inverse_sigmoid(x, eps=1e-5):
    x = x.clamp(0, 1)
    return torch.log(x.clamp(min=eps) / (1 - x).clamp(min=eps))


def predicted_block(logits, level):
    """Standard rule: blocked where the resized prediction has sigmoid < 0.5."""
    return logits.sigmoid() < 0.5


class Attention(nn.Module):
    """mmcv MultiheadAttention wrapper: identity + MHA(q + qpos, k + kpos, v) (keys attn.*)."""

    def __init__(self, dim, heads):
        super().__init__()
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)

    def forward(self, x, qpos, key, kpos, value, mask=None):
        return x + self.attn(x + qpos, key + kpos, value, attn_mask=mask, need_weights=False)[0]


class DecoderLayer(nn.Module):
    """Post-norm: cross-attention -> self-attention -> FFN."""

    def __init__(self, cfg):
        super().__init__()
        C = cfg.decoder_dim
        self.cross_attn = Attention(C, cfg.num_heads)
        self.self_attn = Attention(C, cfg.num_heads)
        self.ffn = FFN(C, cfg.decoder_ffn)
        self.norms = nn.ModuleList([nn.LayerNorm(C) for _ in range(3)])

    def forward(self, q, qpos, memory, mem_pos, mask):
        """q, qpos [B,Q,C]; memory [B,HW,C]; mem_pos [HW,C]; mask [B*heads,Q,HW] -> [B,Q,C]."""
        q = self.norms[0](self.cross_attn(q, qpos, memory, mem_pos, memory, mask))
        q = self.norms[1](self.self_attn(q, qpos, q, qpos, q))
        return self.norms[2](self.ffn(q))


class TransformerDecoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.layers = nn.ModuleList([DecoderLayer(cfg) for _ in range(cfg.decoder_layers)])
        self.post_norm = nn.LayerNorm(cfg.decoder_dim)


class PanopticHead(nn.Module):
    def __init__(self, cfg, llm_decoder=False):
        super().__init__()
        C, Q = cfg.decoder_dim, cfg.num_queries
        self.heads, self.image_size = cfg.num_heads, cfg.image_size
        self.sizes = [(s, s) for s in cfg.memory_sizes]
        self.pixel_decoder = PixelDecoder(cfg)
        self.transformer_decoder = TransformerDecoder(cfg)
        self.query_feat = nn.Embedding(Q, C)
        self.query_embed = nn.Embedding(Q, C)
        self.level_embed = nn.Embedding(3, C)
        self.mask_embed = mlp(C, C, C)
        self.cls_proj = mlp(C, C, cfg.clip_dim)
        self.mask_pooling_proj = nn.Sequential(nn.LayerNorm(C), nn.Linear(C, C))
        self.iou_embed = mlp(C, C, 1)  # in upstream checkpoints; OMG-LLaVA never uses it
        self.mask_tokens = nn.Embedding(1, C)
        self.pb_embedding = nn.Embedding(2, C)
        self.pos_linear = nn.Linear(2 * C, C)
        if llm_decoder:  # task checkpoints' [SEG]-only copies (spec §9.3)
            self.transformer_decoder_llm = TransformerDecoder(cfg)
            self.mask_embed_llm = mlp(C, C, C)
        self.logit_scale = cfg.logit_scale
        emb = torch.randn(cfg.num_classes, cfg.class_synonyms, cfg.clip_dim, generator=torch.Generator().manual_seed(0))
        self.register_buffer("cls_embed", F.normalize(emb, dim=-1), persistent=False)  # [K-1,P_syn,clip_dim]

    def set_class_embeddings(self, emb):
        """emb [K-1, P_syn, clip_dim]: unit-norm text embeddings of the real classes (background is implicit)."""
        self.cls_embed = emb.to(self.cls_embed)

    def predict(self, q, mask_features, mask_embed, post_norm):
        """q [B,Q,C] raw, mask_features [B or 1,C,M,M] -> (z [B,Q,C] post-normed, mask_logits [B,Q,M,M])."""
        z = post_norm(q)
        # matmul broadcasts one image's features over B prompt queries without copying them (an einsum would not)
        logits = mask_embed(z) @ mask_features.flatten(2)                      # [B,Q,MM]
        return z, logits.reshape(logits.shape[:-1] + mask_features.shape[-2:])

    def classify(self, z, mask_features, mask_logits):
        """Sphere classifier -> class_logits [B,Q,K]; the background (last) column is exactly 0."""
        fg = (mask_logits > 0).to(z.dtype)  # [B,Q,M,M]
        fg = fg / (fg.sum((-2, -1), keepdim=True) + 1e-8)
        pooled = fg.flatten(2) @ mask_features.flatten(2).transpose(1, 2)      # [B,Q,C]
        e = F.normalize(self.cls_proj(self.mask_pooling_proj(pooled) + z), dim=-1)
        cos = torch.einsum("bqd,kpd->bqkp", e, self.cls_embed).amax(-1)  # [B,Q,K-1]
        return math.exp(self.logit_scale) * torch.cat([cos, torch.zeros_like(cos[..., :1])], -1)

    def attention_mask(self, mask_logits, level, block):
        """mask_logits [B,Q,M,M] -> [B*heads,Q,HW] bool for `level`, fully blocked rows unblocked."""
        x = F.interpolate(mask_logits, size=self.sizes[level], mode="bilinear", align_corners=False)
        blocked = block(x, level).flatten(2)  # [B,Q,HW]
        blocked = blocked & ~blocked.all(-1, keepdim=True)
        return blocked[:, None].expand(-1, self.heads, -1, -1).flatten(0, 1)

    def decode(self, q, qpos, mask_features, mems, block=predicted_block, use_llm=False, with_classes=False):
        """q, qpos [B,Q,C]; mems [mem0, mem1, mem2] -> (q raw layer output [B,Q,C], [(class_logits|None, mask_logits)] per stage)."""
        decoder = self.transformer_decoder_llm if use_llm else self.transformer_decoder
        mask_embed = self.mask_embed_llm if use_llm else self.mask_embed
        memories = [m.flatten(2).transpose(1, 2) + self.level_embed.weight[i] for i, m in enumerate(mems)]  # [B or 1,HW,C]
        # from the traced shapes, so that exported graphs compute the encodings rather than store them
        key_pos = [sine_3d(*m.shape[-2:], self.level_embed.embedding_dim) for m in mems]  # [HW,C]

        def head(q):
            z, mask_logits = self.predict(q, mask_features, mask_embed, decoder.post_norm)
            return (self.classify(z, mask_features, mask_logits) if with_classes else None), mask_logits

        predictions = [head(q)]
        for i, layer in enumerate(decoder.layers):
            level = i % 3
            mask = self.attention_mask(predictions[-1][1], level, block)
            memory = memories[level].expand(q.shape[0], -1, -1)
            q = layer(q, qpos, memory, key_pos[level], mask)
            predictions.append(head(q))
        return q, predictions

    def prompt_queries(self, points, boxes, kinds):
        """points [N,2], boxes [N,4] (S_in space), kinds [N] -> (q_feat0 [N,C], q_pos [N,C]); boxes use their centre."""
        S = self.image_size
        p = torch.where((kinds == 1)[:, None], (boxes[:, :2] + boxes[:, 2:]) / 2, points)
        xyxy = torch.cat([p - 3, p + 3], -1) / S  # the +-3 px pseudo box
        cxcywh = torch.cat([(xyxy[:, :2] + xyxy[:, 2:]) / 2, xyxy[:, 2:] - xyxy[:, :2]], -1)
        q_pos = self.pos_linear(coordinate_to_encoding(inverse_sigmoid(cxcywh).sigmoid(), self.pos_linear.out_features))
        q_feat = (self.pb_embedding.weight[0] + self.mask_tokens.weight[0]).expand_as(q_pos)
        return q_feat, q_pos

    def prompt_block(self, boxes, regions, kinds):
        """The per-kind blocking rule of spec §7.2 as block(logits [N,1,h,w], level) -> [N,1,h,w] bool."""
        b = (boxes / self.image_size).clamp(0, 1)  # [N,4]
        is_box, is_region = (kinds == 1)[:, None, None, None], (kinds == 2)[:, None, None, None]

        def block(x, level):
            h, w = self.sizes[level]
            rows = torch.arange(h, dtype=x.dtype, device=x.device)[None, :, None]
            cols = torch.arange(w, dtype=x.dtype, device=x.device)[None, None, :]
            sx, sy = torch.floor(b[:, 0] * w), torch.floor(b[:, 1] * h)
            ex, ey = torch.floor(b[:, 2] * w + 1), torch.floor(b[:, 3] * h + 1)
            outside = (rows < sy[:, None, None]) | (rows >= ey[:, None, None]) | (cols < sx[:, None, None]) | (cols >= ex[:, None, None])
            x = torch.where(is_box & outside[:, None], torch.full_like(x, -100.0), x)
            step = self.image_size // h  # nearest resize with the floor rule, exact for integer ratios
            outside_region = regions[:, None, ::step, ::step] < 0.5
            # logical ops, not a bool Where: onnxruntime has no bool Where kernel
            return (is_region & outside_region) | (~is_region & (x.sigmoid() < 0.5))

        return block
