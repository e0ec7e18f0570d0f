"""Shared fixtures: the package importable from tools/model, and a seeded tiny-random segmenter."""
import os
import sys

import pytest
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from omg_llava.config import get_config  # noqa: E402
from omg_llava.segmenter import OmgSeg  # noqa: E402


@pytest.fixture(scope="session")
def tiny_cfg():
    return get_config("tiny-random")


@pytest.fixture(scope="session")
def tiny_seg(tiny_cfg):
    torch.manual_seed(0)
    return OmgSeg(tiny_cfg).eval()


@pytest.fixture(scope="session")
def tiny_image_pass(tiny_cfg, tiny_seg):
    torch.manual_seed(1)
    with torch.no_grad():
        return tiny_seg(torch.randn(1, 3, tiny_cfg.image_size, tiny_cfg.image_size))
