"""Fixed positional encodings of OMG-Seg (spec omg-llava.md §4.3).

All three are mmdet's sine encodings with temperature 10000, scale 2*pi and eps 1e-6;
channel pairs share one frequency and are interleaved (sin, cos).
"""
import math

import torch

TEMPERATURE = 10000.0
SCALE = 2 * math.pi
EPS = 1e-6


def _sine(x, num_feats):
    """x [...] -> [..., num_feats]: sin at even channels, cos at odd ones, dim_t[k] = T^(2*floor(k/2)/num_feats)."""
    k = torch.arange(num_feats, dtype=torch.float32, device=x.device)
    dim_t = TEMPERATURE ** (2 * torch.div(k, 2, rounding_mode="floor") / num_feats)
    angles = x[..., None] / dim_t
    return torch.where(k % 2 == 0, angles.sin(), angles.cos())


def sine_2d(h, w, channels):
    """Pixel-decoder encoding of an h x w grid -> [h*w, channels] (row-major), channels = [py, px]."""
    ye = (torch.arange(h, dtype=torch.float32) + 1) / (h + EPS) * SCALE
    xe = (torch.arange(w, dtype=torch.float32) + 1) / (w + EPS) * SCALE
    py = _sine(ye, channels // 2)[:, None, :].expand(h, w, channels // 2)
    px = _sine(xe, channels // 2)[None, :, :].expand(h, w, channels // 2)
    return torch.cat([py, px], dim=-1).reshape(h * w, channels)


def sine_3d(h, w, channels):
    """Decoder key encoding (one frame) -> [h*w, channels]: sine_2d plus the constant frame term pz."""
    ze = torch.full((), 1 / (1 + EPS) * SCALE)
    pz = _sine(ze, channels)  # [channels]: the frame axis uses 2*num_feats frequencies
    return sine_2d(h, w, channels) + pz


def coordinate_to_encoding(boxes, channels):
    """boxes_cxcywh [N,4] in [0,1] -> [N, 2*channels] ordered [e(cy), e(cx), e(w), e(h)], channels/2 each."""
    num_feats = channels // 2
    e = _sine(boxes * SCALE, num_feats)  # [N,4,num_feats]
    return torch.cat([e[:, 1], e[:, 0], e[:, 2], e[:, 3]], dim=-1)
