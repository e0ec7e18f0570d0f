"""ConvNeXt backbone of OMG-Seg (spec omg-llava.md §4.1), timm layout and parameter names.

Keys: stem.{0,1}, layer{1..4}.downsample.{0,1} (layers 2-4), layer{k}.blocks.{j}.{conv_dw,norm,mlp.fc1,mlp.fc2,gamma}.
"""
import torch
import torch.nn.functional as F
from torch import nn

LN_EPS = 1e-6


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of a [B,C,H,W] map."""

    def __init__(self, channels):
        super().__init__(channels, eps=LN_EPS)

    def forward(self, x):
        x = x.permute(0, 2, 3, 1)  # [B,H,W,C]
        return super().forward(x).permute(0, 3, 1, 2)


class Mlp(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.fc1 = nn.Linear(dim, 4 * dim)
        self.fc2 = nn.Linear(4 * dim, dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    """depthwise 7x7 -> LN -> MLP -> layer scale, residual."""

    def __init__(self, dim, layer_scale_init):
        super().__init__()
        self.conv_dw = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=LN_EPS)
        self.mlp = Mlp(dim)
        self.gamma = nn.Parameter(torch.full((dim,), layer_scale_init))

    def forward(self, x):
        y = self.conv_dw(x).permute(0, 2, 3, 1)  # [B,H,W,C]
        y = self.mlp(self.norm(y)) * self.gamma
        return x + y.permute(0, 3, 1, 2)


class Stage(nn.Module):
    def __init__(self, dim_in, dim, depth, layer_scale_init, downsample):
        super().__init__()
        self.downsample = nn.Sequential(LayerNorm2d(dim_in), nn.Conv2d(dim_in, dim, 2, stride=2)) if downsample else nn.Identity()
        self.blocks = nn.Sequential(*[Block(dim, layer_scale_init) for _ in range(depth)])

    def forward(self, x):
        return self.blocks(self.downsample(x))


class ConvNeXt(nn.Module):
    """pixel_values [1,3,S_in,S_in] -> [c2 (stride 4), c3 (8), c4 (16), c5 (32)]; c5 has F channels."""

    def __init__(self, cfg, layer_scale_init=1e-6):  # timm's default layer-scale init
        super().__init__()
        dims, depths = cfg.backbone_dims, cfg.backbone_depths
        self.stem = nn.Sequential(nn.Conv2d(3, dims[0], 4, stride=4), LayerNorm2d(dims[0]))
        for k in range(4):
            stage = Stage(dims[max(k - 1, 0)], dims[k], depths[k], layer_scale_init, downsample=k > 0)
            self.add_module(f"layer{k + 1}", stage)

    def forward(self, x):
        x = self.stem(x)
        feats = []
        for k in range(1, 5):
            x = getattr(self, f"layer{k}")(x)
            feats.append(x)
        return feats
