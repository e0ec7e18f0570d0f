"""Scenes -> model-space tensors, through the reference pipeline's own preprocessing and prompt geometry.

Training scenes use seeds from TRAIN_SEED up; evaluation uses seeds below it, so the two never meet.
"""
import torch
import torch.nn.functional as F

from omg_llava.pipeline import Geometry, prompt_inputs
from scenes import make_scene

TRAIN_SEED = 1_000_000


def pad_masks(masks):
    """masks [n,H,W] bool -> [n,side,side] float, placed in the padded square as the image is."""
    n, h, w = masks.shape
    g = Geometry(w, h, 0)
    out = torch.zeros(n, g.side, g.side)
    out[:, g.pad_top:g.pad_top + h, g.pad_left:g.pad_left + w] = torch.from_numpy(masks).float()
    return out


def target_masks(masks, size):
    """masks [n,H,W] bool -> [n,size,size] float in [0,1]: area fractions on the mask grid."""
    return F.adaptive_avg_pool2d(pad_masks(masks)[:, None], size)[:, 0]


def train_scene(index, cfg, rng):
    """Training scene `index`, rendered at a side between S_in and 2 S_in so resizing is seen too."""
    side = int(cfg.image_size * (1 if rng.random() < 0.5 else rng.uniform(1.0, 2.0)))
    return make_scene(TRAIN_SEED + index, max_side=side)


def prompt_tensors(scene, prompts, cfg):
    """texts.Prompt list -> the prompt graph's (points [N,2], boxes [N,4], regions [N,S_in,S_in], kinds [N]).

    Boxes default to the object's bounding box; a mask prompt's point is computed by the pipeline (mask centre)."""
    specs = []
    for p in prompts:
        if p.kind == "point":
            specs.append({"kind": "point", "x": p.point[0], "y": p.point[1]})
        elif p.kind == "box":
            x1, y1, x2, y2 = p.box or scene.objects[p.obj].bbox
            specs.append({"kind": "box", "x1": x1, "y1": y1, "x2": x2, "y2": y2})
        else:
            specs.append({"kind": "mask", "mask": scene.masks[p.obj]})
    t = prompt_inputs(specs, Geometry(*scene.size, cfg.image_size))
    return t["points"], t["boxes"], t["regions"], t["kinds"]
