"""Part 6: real-size projection from a config of tools/model/omg_llava/config.py (default omg-llava-7b), without weights.

    /usr/bin/python3 bench/projection.py [--config omg-llava-7b] [--context 1024]    -> JSON on stdout

Counts are analytic (multiply-accumulates; FLOPs = 2 x MACs) from the config's sizes. Before projecting, the
parameter and backbone MAC formulas are checked against the real modules of the nano config (parameter sums and
Conv2d/Linear forward hooks), so a change of the architecture that the formulas miss fails loudly.
"""
import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools" / "model"))

import torch  # noqa: E402
from torch import nn  # noqa: E402

from omg_llava.config import get_config  # noqa: E402
from omg_llava.convnext import ConvNeXt  # noqa: E402
from omg_llava.llm import InternLM2  # noqa: E402

BANDWIDTH = {"H100 SXM (3.35 TB/s)": 3.35e12}


def llm_layer_params(l):
    qkv = l.hidden_size * (l.num_heads + 2 * l.num_kv_heads) * l.head_dim
    wo = l.num_heads * l.head_dim * l.hidden_size
    return qkv + wo + 3 * l.hidden_size * l.intermediate_size + 2 * l.hidden_size  # + two RMSNorm weights


def llm_params(l):
    """(all parameters, the ones read per decoded token): the embedding table is read one row per token."""
    body = l.num_layers * llm_layer_params(l) + l.hidden_size  # final norm
    table = l.vocab_rows * l.hidden_size
    return body + 2 * table, body + table  # tok_embeddings + output head; per token: output head only


def backbone_macs(cfg):
    """ConvNeXt: stem 4x4/4, per stage (2x2/2 downsample,) blocks of depthwise 7x7 + MLP 4x."""
    dims, depths, r = cfg.backbone_dims, cfg.backbone_depths, cfg.image_size // 4
    macs = r * r * 3 * 16 * dims[0]
    for k, (d, n) in enumerate(zip(dims, depths)):
        if k:
            r //= 2
            macs += r * r * 4 * dims[k - 1] * d
        macs += n * r * r * (49 * d + 8 * d * d)
    return macs


def backbone_params(cfg):
    dims, depths = cfg.backbone_dims, cfg.backbone_depths
    p = 3 * 16 * dims[0] + dims[0] + 2 * dims[0]
    for k, (d, n) in enumerate(zip(dims, depths)):
        if k:
            p += 2 * dims[k - 1] + 4 * dims[k - 1] * d + d
        p += n * (49 * d + d + 2 * d + 8 * d * d + 4 * d + d + d)
    return p


def pixel_decoder_macs(cfg):
    """Input 1x1 convs, deformable encoder layers (projections + FFN; sampling is ~4 MACs per sampled value),
    the stride-4 lateral 1x1 and output 3x3 convs and the mask-feature 1x1 conv."""
    C, M = cfg.decoder_dim, cfg.mask_size
    levels = cfg.memory_sizes
    tokens = sum(s * s for s in levels)
    macs = sum(s * s * cfg.backbone_dims[3 - i] * C for i, s in enumerate(levels))
    samples = cfg.num_heads * 3 * cfg.deform_points
    per_token = 2 * C * C + C * samples * 3 + 2 * C * cfg.pixel_decoder_ffn + samples * (C // cfg.num_heads) * 4
    macs += cfg.pixel_decoder_layers * tokens * per_token
    return macs + M * M * (cfg.backbone_dims[0] * C + 9 * C * C + C * C)


def decoder_macs(cfg):
    """Masked-attention decoder (level cycle 0,1,2) with a mask prediction before every layer and after the last."""
    C, Q, M = cfg.decoder_dim, cfg.num_queries, cfg.mask_size
    macs = 0
    for i in range(cfg.decoder_layers):
        hw = cfg.memory_sizes[i % 3] ** 2
        cross = Q * C * C * 2 + hw * C * C * 2 + 2 * Q * hw * C
        self_ = 4 * Q * C * C + 2 * Q * Q * C
        macs += cross + self_ + 2 * Q * C * cfg.decoder_ffn
    heads = cfg.decoder_layers + 1
    return macs + heads * (3 * Q * C * C + Q * C * M * M)


def count_forward_macs(module, x):
    """Conv2d and Linear MACs of one forward pass, by hooks."""
    total = 0

    def hook(m, _inp, out):
        nonlocal total
        if isinstance(m, nn.Conv2d):
            total += out.numel() * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]
        else:
            total += out.numel() * m.in_features

    handles = [m.register_forward_hook(hook) for m in module.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        module(x)
    for h in handles:
        h.remove()
    return total


def check_formulas():
    """The formulas against real modules of the nano config (vocab rows made up: only the formula matters)."""
    cfg = get_config("nano")
    cfg = replace(cfg, llm=replace(cfg.llm, vocab_rows=500))
    llm_real = sum(p.numel() for p in InternLM2(cfg.llm).parameters())
    backbone = ConvNeXt(cfg)
    checks = {
        "llm_params": (llm_params(cfg.llm)[0], llm_real),
        "backbone_params": (backbone_params(cfg), sum(p.numel() for p in backbone.parameters())),
        "backbone_macs": (backbone_macs(cfg), count_forward_macs(backbone, torch.zeros(1, 3, cfg.image_size, cfg.image_size))),
    }
    for name, (formula, real) in checks.items():
        if formula != real:
            raise AssertionError(f"{name}: formula {formula} != modules {real} on the nano config")
    return {k: v[1] for k, v in checks.items()}


def project(name, context):
    cfg = get_config(name)
    l = cfg.llm
    if l.vocab_rows <= 0:
        raise ValueError(f"{name} has no vocab size")
    total_params, per_token_params = llm_params(l)
    kv_per_position = 2 * l.num_layers * l.num_kv_heads * l.head_dim  # values
    attn_macs_per_position = 2 * l.num_layers * l.num_heads * l.head_dim  # QK and AV, per cached position
    body_macs = per_token_params  # each weight read per token takes part in one multiply-accumulate
    pixel_tokens = cfg.prior_grid ** 2
    block = pixel_tokens + 1 + min(cfg.num_queries, pixel_tokens)  # at most one object per prior cell
    decode = {}
    for dtype, size in (("fp16", 2), ("fp32", 4)):
        bytes_per_token = per_token_params * size + kv_per_position * context * size
        decode[dtype] = {"bytes_per_token": bytes_per_token,
                         "bandwidth_bound_tokens_per_s": {gpu: bw / bytes_per_token for gpu, bw in BANDWIDTH.items()}}
    prefill_macs = block * body_macs + attn_macs_per_position * block * (block + 1) // 2
    vision = {"backbone": backbone_macs(cfg), "pixel_decoder": pixel_decoder_macs(cfg), "decoder": decoder_macs(cfg)}
    return {
        "config": name, "context_tokens": context,
        "llm": {"params": total_params, "params_read_per_token": per_token_params, "layers": l.num_layers,
                "hidden": l.hidden_size, "kv_bytes_per_token_fp16": kv_per_position * 2},
        "decode": {"flops_per_token": 2 * (body_macs + attn_macs_per_position * context), **decode},
        "prefill_image_block": {"tokens": block, "flops": 2 * prefill_macs,
                                "bytes_fp16": per_token_params * 2 + kv_per_position * block * 2},
        "vision": {"flops": 2 * sum(vision.values()), "flops_by_part": {k: 2 * v for k, v in vision.items()},
                   "backbone_params": backbone_params(cfg), "image_size": cfg.image_size},
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="omg-llava-7b")
    ap.add_argument("--context", type=int, default=1024, help="cached positions assumed for decoding")
    args = ap.parse_args()
    checked = check_formulas()
    json.dump({**project(args.config, args.context), "formulas_checked_on_nano": checked}, sys.stdout)


if __name__ == "__main__":
    main()
