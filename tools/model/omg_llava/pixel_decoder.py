"""MSDeformAttn pixel decoder of OMG-Seg (spec omg-llava.md §4.2), mmdet parameter names.

The deformable attention core samples with F.grid_sample so that it exports to ONNX (GridSample, opset 16+).
Levels run low -> high resolution: level 0 = c5 (L0), 1 = c4 (L1), 2 = c3 (L2).
"""
import torch
import torch.nn.functional as F
from torch import nn

from .positional import sine_2d

GN_EPS = 1e-5


class ConvGN(nn.Module):
    """mmcv ConvModule: conv + GroupNorm, optional ReLU (keys conv.*, gn.*)."""

    def __init__(self, c_in, c_out, k, groups, bias, relu=False):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, k, padding=k // 2, bias=bias)
        self.gn = nn.GroupNorm(groups, c_out, eps=GN_EPS)
        self.relu = relu

    def forward(self, x):
        x = self.gn(self.conv(x))
        return F.relu(x) if self.relu else x


class FFN(nn.Module):
    """mmcv FFN with its identity add: x + W2 relu(W1 x) (keys layers.0.0, layers.1)."""

    def __init__(self, dim, hidden):
        super().__init__()
        self.layers = nn.Sequential(nn.Sequential(nn.Linear(dim, hidden), nn.ReLU()), nn.Linear(hidden, dim))

    def forward(self, x):
        return x + self.layers(x)


class MSDeformAttn(nn.Module):
    def __init__(self, dim, heads, levels, points):
        super().__init__()
        self.heads, self.levels, self.points = heads, levels, points
        self.sampling_offsets = nn.Linear(dim, heads * levels * points * 2)
        self.attention_weights = nn.Linear(dim, heads * levels * points)
        self.value_proj = nn.Linear(dim, dim)
        self.output_proj = nn.Linear(dim, dim)

    def forward(self, x, pos, ref, sizes):
        """x [B,T,C], pos [T,C] (T = sum h*w); ref [T,2] normalised (x, y); sizes [(h, w)] per level -> [B,T,C] (residual added).

        Batch and heads fold into grid_sample's batch (B*H)."""
        B, T, C = x.shape
        H, L, Pn = self.heads, self.levels, self.points
        qp = x + pos
        v = self.value_proj(x).reshape(B, T, H, C // H)
        offsets = self.sampling_offsets(qp).reshape(B, T, H, L, Pn, 2)
        attn = self.attention_weights(qp).reshape(B, T, H, L * Pn).softmax(-1).reshape(B, T, H, L, Pn)
        out, start = 0, 0
        for level, (h, w) in enumerate(sizes):
            v_l = v[:, start:start + h * w].permute(0, 2, 3, 1).reshape(B * H, C // H, h, w)  # [BH,Dh,h,w]
            start += h * w
            loc = ref[:, None, None, :] + offsets[:, :, :, level] / torch.tensor([w, h], dtype=x.dtype, device=x.device)  # [B,T,H,Pn,2]
            grid = (2 * loc - 1).permute(0, 2, 1, 3, 4).reshape(B * H, T, Pn, 2)
            sampled = F.grid_sample(v_l, grid, mode="bilinear", padding_mode="zeros", align_corners=False)  # [BH,Dh,T,Pn]
            weights = attn[:, :, :, level].permute(0, 2, 1, 3).reshape(B * H, 1, T, Pn)
            out = out + (sampled * weights).sum(-1)  # [BH,Dh,T]
        out = out.reshape(B, C, T).transpose(1, 2)
        return x + self.output_proj(out)


class EncoderLayer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        C = cfg.decoder_dim
        self.self_attn = MSDeformAttn(C, cfg.num_heads, 3, cfg.deform_points)
        self.ffn = FFN(C, cfg.pixel_decoder_ffn)
        self.norms = nn.ModuleList([nn.LayerNorm(C), nn.LayerNorm(C)])

    def forward(self, x, pos, ref, sizes):
        x = self.norms[0](self.self_attn(x, pos, ref, sizes))
        return self.norms[1](self.ffn(x))


class Encoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.layers = nn.ModuleList([EncoderLayer(cfg) for _ in range(cfg.pixel_decoder_layers)])

    def forward(self, x, pos, ref, sizes):
        for layer in self.layers:
            x = layer(x, pos, ref, sizes)
        return x


def reference_points(sizes):
    """[(h, w)] -> [T,2]: cell centres ((x+0.5)/w, (y+0.5)/h), row-major per level."""
    refs = []
    for h, w in sizes:
        y, x = torch.meshgrid((torch.arange(h) + 0.5) / h, (torch.arange(w) + 0.5) / w, indexing="ij")
        refs.append(torch.stack([x, y], -1).reshape(h * w, 2))
    return torch.cat(refs)


class PixelDecoder(nn.Module):
    """[c2,c3,c4,c5] -> (mask_features [B,C,M,M], [mem0 [B,C,L0,L0], mem1 [B,C,L1,L1], mem2 [B,C,L2,L2]])."""

    def __init__(self, cfg):
        super().__init__()
        C, g, dims = cfg.decoder_dim, cfg.norm_groups, cfg.backbone_dims
        self.sizes = [(s, s) for s in cfg.memory_sizes]
        self.input_convs = nn.ModuleList([ConvGN(dims[3 - i], C, 1, g, bias=True) for i in range(3)])
        self.level_encoding = nn.Embedding(3, C)
        self.encoder = Encoder(cfg)
        self.lateral_convs = nn.ModuleList([ConvGN(dims[0], C, 1, g, bias=False)])
        self.output_convs = nn.ModuleList([ConvGN(C, C, 3, g, bias=False, relu=True)])
        self.mask_feature = nn.Conv2d(C, C, 1)
        self.register_buffer("ref", reference_points(self.sizes), persistent=False)

    def forward(self, feats):
        C = self.mask_feature.out_channels
        tokens, pos = [], []
        for i in range(3):
            level = self.input_convs[i](feats[3 - i])  # [B,C,h,w]
            tokens.append(level.flatten(2).transpose(1, 2))  # [B,h*w,C]
            # from the traced shape, so that the exported graph computes the encoding rather than storing it
            pos.append(sine_2d(*level.shape[-2:], C) + self.level_encoding.weight[i])
        pos = torch.cat(pos)  # [T,C]
        x = self.encoder(torch.cat(tokens, 1), pos, self.ref, self.sizes)  # [B,T,C]
        mems, start = [], 0
        for h, w in self.sizes:
            mems.append(x[:, start:start + h * w].transpose(1, 2).reshape(-1, C, h, w))
            start += h * w
        y = self.lateral_convs[0](feats[0])
        y = y + F.interpolate(mems[2], size=y.shape[-2:], mode="bilinear", align_corners=False)
        return self.mask_feature(self.output_convs[0](y)), mems
