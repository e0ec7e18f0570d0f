"""Reference pipeline: geometry, mask centre rule, preprocessing, and cached turns == recomputation."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from export.bundle import TEMPLATE, build_model, load_tokenizer
from omg_llava.config import get_config
from omg_llava.pipeline import IMAGE_ID, Conversation, Geometry, mask_center, preprocess


def test_geometry_pads_at_the_floor_offset_and_crops_exactly():
    g = Geometry(width=5, height=2, image_size=10)  # side 5, pad_top 1 (floor of 3/2), 2 rows below
    assert (g.side, g.pad_left, g.pad_top) == (5, 0, 1)
    assert g.point(0, 0) == (0.0, 2.0) and g.point(5, 2) == (10.0, 6.0)
    mask = np.zeros((2, 5), bool)
    mask[1, 4] = True  # padded square pixel (row 2, col 4) -> S_in rows 4-5, cols 8-9 by floor(dst * 5/10)
    region = g.region(mask)
    assert np.argwhere(region).tolist() == [[4, 8], [4, 9], [5, 8], [5, 9]]
    logits = torch.full((1, 1, 4, 4), -1.0)
    logits[0, 0, 1, :] = 1.0  # the padded square's rows ~1.25-2.5 of 5: inside the image rows 1-2 exist only partly
    masks = g.masks(logits)
    assert masks.shape == (1, 2, 5)
    up = torch.nn.functional.interpolate(logits, size=(5, 5), mode="bilinear", align_corners=False)
    assert np.array_equal(masks[0], (up[0, 0, 1:3] > 0).numpy())


def kornia_center(mask):
    """Literal transcription of upstream get_center_coords over kornia's distance_transform (kernel 3, h 0.35)."""
    image = 1 - torch.from_numpy(np.pad(mask, 1)).float()[None, None]
    d = torch.tensor([[math.hypot(y, x) for x in (-1, 0, 1)] for y in (-1, 0, 1)])
    kernel = torch.exp(d / -0.35)[None, None]
    out, boundary = torch.zeros_like(image), image.clone()
    for i in range(max(image.shape[-2:])):
        cdt = F.conv2d(F.pad(boundary, (1, 1, 1, 1), mode="replicate"), kernel)
        cdt = torch.nan_to_num(-0.35 * torch.log(cdt), posinf=0.0)
        reached = (cdt > 0).float()
        if reached.sum() == 0:
            break
        out += (i * 3 // 2 + cdt) * reached
        boundary = torch.where(reached == 1, torch.ones_like(boundary), boundary)
    out = out[0, 0, 1:-1, 1:-1]
    idx = int(out.flatten().argmax())  # first maximum
    return float(idx % mask.shape[1]), float(idx // mask.shape[1])


def test_mask_center_matches_kornia_ring_peel():
    square = np.zeros((7, 7))
    square[1:6, 1:6] = 1
    assert mask_center(square) == (3.0, 3.0)
    assert mask_center(np.zeros((4, 4))) == (0.0, 0.0)
    rng = np.random.default_rng(0)
    for _ in range(40):  # random blobs: unions of rectangles, often with ties on depth
        mask = np.zeros((14, 17))
        for _ in range(rng.integers(1, 4)):
            y, x = rng.integers(0, 12), rng.integers(0, 15)
            mask[y:y + rng.integers(2, 9), x:x + rng.integers(2, 9)] = 1
        assert mask_center(mask) == kornia_center(mask)


def test_preprocess_pads_with_the_pad_colour():
    cfg = get_config("tiny-random")
    image = Image.new("RGB", (128, 64), (255, 0, 0))  # side 128 = S_in: no resampling
    pixel_values, g = preprocess(image, cfg)
    mean, std = np.array(cfg.mean), np.array(cfg.std)
    pad = (np.array(cfg.pad_color) / 255 - mean) / std
    red = (np.array([1.0, 0.0, 0.0]) - mean) / std
    assert g.pad_top == 32
    assert np.allclose(pixel_values[0, :, 0, 0].numpy(), pad, atol=1e-6)
    assert np.allclose(pixel_values[0, :, 32, 0].numpy(), red, atol=1e-6)
    assert np.allclose(pixel_values[0, :, 96, 127].numpy(), pad, atol=1e-6)


def test_follow_up_turn_from_cache_equals_recomputation():
    _, tok = load_tokenizer()
    model = build_model("tiny-random", tok.vocab_rows, seed=3)
    conv = Conversation(model, tok, TEMPLATE, Image.new("RGB", (40, 24), (10, 200, 30)))
    first = conv.ask("Describe region1 <region>.", [{"kind": "box", "x1": 2, "y1": 3, "x2": 30, "y2": 20}], max_new_tokens=5)
    second = conv.ask("And the <mark>?", [{"kind": "point", "x": 5, "y": 6}], max_new_tokens=5)
    im_end = tok.token_id("<|im_end|>")
    assert first.ids[0] == tok.bos_id and first.ids.count(IMAGE_ID) == 1 and tok.bos_id not in second.ids
    unfed = first.generated[-1:] + ([] if first.generated[-1] == im_end else [im_end])  # history ends with the stop word
    assert second.ids[:len(unfed)] == unfed
    with torch.no_grad():
        fed = [first.inputs_embeds, model.embed(torch.tensor([first.generated[:-1]]))[0], second.inputs_embeds]
        x = torch.cat(fed)[None]
        logits, _, _ = model.llm(x, torch.arange(x.shape[1])[None], torch.ones(1, x.shape[1], dtype=torch.int64))
    assert torch.allclose(logits[0, -1], second.prompt_logits, atol=1e-4)
    assert conv.length == x.shape[1] + len(second.generated) - 1
    with pytest.raises(ValueError, match="2 <mark>/<region> placeholders but 1 prompts"):
        conv.ask("<mark> or <region>?", [{"kind": "point", "x": 1, "y": 1}])
