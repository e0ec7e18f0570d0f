import math

import torch

from omg_llava.positional import coordinate_to_encoding, sine_2d, sine_3d


def _spec_value(v, k, num_feats):
    """spec §4.3: sin(v / dim_t[k]) at even k, cos at odd k, dim_t[k] = 10000^(2*floor(k/2)/num_feats)."""
    a = v / 10000 ** (2 * (k // 2) / num_feats)
    return math.sin(a) if k % 2 == 0 else math.cos(a)


def test_sine_2d_matches_spec_formula():
    h, w, C = 3, 5, 16
    pe = sine_2d(h, w, C)
    assert pe.shape == (h * w, C)
    for row, col, k in [(0, 0, 0), (1, 3, 5), (2, 4, 7), (2, 1, 2)]:
        ye = (row + 1) / (h + 1e-6) * 2 * math.pi
        xe = (col + 1) / (w + 1e-6) * 2 * math.pi
        assert abs(pe[row * w + col, k] - _spec_value(ye, k, C // 2)) < 1e-6  # py first
        assert abs(pe[row * w + col, C // 2 + k] - _spec_value(xe, k, C // 2)) < 1e-6


def test_sine_3d_adds_the_constant_frame_term():
    h, w, C = 2, 3, 16
    pz = torch.tensor([_spec_value(1 / (1 + 1e-6) * 2 * math.pi, k, C) for k in range(C)])
    assert torch.allclose(sine_3d(h, w, C), sine_2d(h, w, C) + pz, atol=1e-6)
    assert pz.abs().max() > 0.5  # the z term is not negligible


def test_coordinate_encoding_order_is_cy_cx_w_h():
    C = 16
    box = torch.tensor([[0.1, 0.7, 0.3, 0.05]])  # cx, cy, w, h
    e = coordinate_to_encoding(box, C)
    assert e.shape == (1, 2 * C)
    n = C // 2
    for part, value in enumerate([0.7, 0.1, 0.3, 0.05]):
        for k in (0, 1, 6):
            assert abs(e[0, part * n + k] - _spec_value(value * 2 * math.pi, k, n)) < 1e-6
