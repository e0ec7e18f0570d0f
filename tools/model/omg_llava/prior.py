"""Perception prior and projectors (spec omg-llava.md §5, §6), upstream parameter names.

The prior's two-step resize (mask logits M -> S_in, sigmoid, S_in -> G) is computed exactly but only at the
S_in-space pixels the second resize reads: 2 rows x 2 columns per prior cell (the "4-sample shortcut").
"""
import functools
import math

import numpy as np
import torch
from torch import nn


class Projector(nn.Module):
    """Naive_Proj: pixel tokens (model_feat), separator, query tokens (model(query_proj(.)))."""

    def __init__(self, cfg):
        super().__init__()
        C, D, F4 = cfg.decoder_dim, cfg.llm.hidden_size, 4 * cfg.clip_channels  # F4: after the 2x2 pixel shuffle
        self.query_proj = nn.Linear(2 * C, F4)
        self.model = nn.Sequential(nn.Linear(F4, D), nn.GELU(), nn.Linear(D, D))
        self.model_feat = nn.Sequential(nn.Linear(F4 + 2 * C, D), nn.GELU(), nn.Linear(D, D))
        self.seperate_embed = nn.Embedding(1, D)  # upstream spelling

    def embed_queries(self, qp):
        """qp [N,2C] = concat(query content, position) -> [N,D]; also used for visual prompts."""
        return self.model(self.query_proj(qp))


class TextToVision(nn.Module):
    """projector_text2vision: [SEG] hidden [N,D] -> [N,2C] = concat(q_feat0, q_pos)."""

    def __init__(self, cfg):
        super().__init__()
        C, D = cfg.decoder_dim, cfg.llm.hidden_size
        self.model = nn.Sequential(nn.Linear(D, 2 * C), nn.GELU(), nn.Linear(2 * C, 2 * C))

    def forward(self, hidden):
        return self.model(hidden)


def _bilinear_matrix(n_in, positions):
    """[len(positions), n_in] weights of PyTorch's 1-D bilinear rule (align_corners=False) at `positions` (input pixels)."""
    A = np.zeros((len(positions), n_in))
    for row, p in enumerate(positions):
        p = max(p, 0.0)
        i0 = min(int(math.floor(p)), n_in - 1)
        i1 = min(i0 + 1, n_in - 1)
        A[row, i0] += 1 - (p - i0)
        A[row, i1] += p - i0
    return A


@functools.lru_cache()
def prior_sampling(S, M, G):
    """(A [2G,M], B [G,2G]) float32: the S-space pixels the S -> G resize reads, as bilinear samples of the M grid (A),
    and the S -> G weights over them (B). Exact because each output cell reads 2 neighbouring S-space pixels."""
    down = _bilinear_matrix(S, [(i + 0.5) * S / G - 0.5 for i in range(G)])  # [G,S]
    pixels = sorted(set(np.nonzero(down)[1].tolist()))
    assert len(pixels) <= 2 * G, "each prior cell must read at most 2 pixels per axis"
    A = _bilinear_matrix(M, [(p + 0.5) * M / S - 0.5 for p in pixels])
    return torch.from_numpy(A).float(), torch.from_numpy(down[:, pixels]).float()


def space_to_depth(x):
    """[1,F,2G,2G] -> [P,4F]: channel (rh*2 + rw)*F + c holds pixel (2i+rh, 2j+rw) (ONNX SpaceToDepth order), rows row-major."""
    _, Fc, H, W = x.shape
    x = x.reshape(Fc, H // 2, 2, W // 2, 2).permute(2, 4, 0, 1, 3)  # [rh,rw,F,G,G]
    return x.reshape(4 * Fc, (H // 2) * (W // 2)).T


def prior_grid(class_logits, mask_logits, G):
    """class_logits [1,Q,K], mask_logits [1,Q,M,M] -> [Q,P]: the scaled sigmoid masks resized M -> S_in -> G (spec §5 steps 1-3)."""
    M = mask_logits.shape[-1]
    A, B = (t.to(mask_logits) for t in prior_sampling(4 * M, M, G))
    score = class_logits[0].softmax(-1)[:, :-1].amax(-1)  # [Q] foreground score, background excluded
    samples = torch.sigmoid(A @ mask_logits[0] @ A.T)  # [Q,2G,2G] the S_in-space pixels that are read
    return ((0.5 * score + 0.5)[:, None, None] * (B @ samples @ B.T)).flatten(1)


def perception_prior(clip_feature, query_feat, query_pos, class_logits, mask_logits, projector):
    """clip_feature [1,F,L0,L0], query_feat/query_pos [1,Q,C], class_logits [1,Q,K], mask_logits [1,Q,M,M]
    -> (pixel_tokens [P,D], separator [1,D], object_tokens [Q,D], object_valid [Q] bool)."""
    grid = prior_grid(class_logits, mask_logits, clip_feature.shape[-1] // 2)  # [Q,P]
    owner = grid.argmax(0)  # [P], first index on ties
    object_valid = (owner[None, :] == torch.arange(grid.shape[0], device=grid.device)[:, None]).any(1)  # [Q]
    qp = torch.cat([query_feat[0], query_pos[0]], -1)  # [Q,2C]
    pixel_query = grid.softmax(0).T @ qp  # [P,2C]: soft assignment over all queries
    clip_with_prior = torch.cat([space_to_depth(clip_feature), pixel_query], -1)  # [P,4F+2C]
    return (projector.model_feat(clip_with_prior), projector.seperate_embed.weight,
            projector.embed_queries(qp), object_valid)
