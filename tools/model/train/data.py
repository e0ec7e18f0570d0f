"""Scenes -> model-space tensors, through the reference pipeline's own preprocessing and prompt geometry.

Rendering and preprocessing are the CPU-heavy part of training, so `SceneTensors` does them in DataLoader
workers while the model trains. Training scenes use seeds from TRAIN_SEED up; evaluation uses seeds below it,
so the two never meet.
"""
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from omg_llava.pipeline import Geometry, preprocess, prompt_inputs
from scenes import make_scene
from scenes.texts import Prompt, interior_point

TRAIN_SEED = 1_000_000
MAX_OBJECTS = 4   # scenes hold 1-4 shapes; per-object tensors are padded to this
KINDS = ("point", "box", "mask")
ENDLESS = 1 << 40  # the length of a dataset that runs stop reading by their step count


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


def has_twins(scene):
    """Two shapes of one colour: the scenes whose shapes the segmenter's queries most often merge."""
    colours = [o.colour for o in scene.objects]
    return len(set(colours)) < len(colours)


def train_scene(index, cfg, rng, twins=0.0):
    """Training scene `index`, rendered at a side between S_in and 2 S_in so resizing is seen too; with probability
    `twins`, the first scene with twins from its seed on in steps of ENDLESS (seeds no other index draws)."""
    side = int(cfg.image_size * (1 if rng.random() < 0.5 else rng.uniform(1.0, 2.0)))
    seed = TRAIN_SEED + index
    scene = make_scene(seed, max_side=side)
    if twins and rng.random() < twins:
        while not has_twins(scene):
            seed += ENDLESS
            scene = make_scene(seed, max_side=side)
    return scene


def random_prompts(scene, rng, count):
    """`count` prompts of random kinds on random objects."""
    out = []
    for _ in range(count):
        i = int(rng.integers(len(scene.objects)))
        kind = KINDS[rng.integers(3)]
        out.append(Prompt(kind, i, point=interior_point(scene.masks[i], rng) if kind == "point" else None))
    return out


def every_prompt(scene, rng):
    """A point, a box and a mask prompt on every object, in that order, padded to MAX_OBJECTS objects."""
    objs = list(range(len(scene.objects))) + [0] * (MAX_OBJECTS - len(scene.objects))
    return [Prompt(kind, i, point=interior_point(scene.masks[i], rng) if kind == "point" else None)
            for i in objs for kind in KINDS]


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


class SceneTensors(Dataset):
    """Item i: scene `make(first + i, rng)` with `prompts(scene, rng)`, rng seeded by first + i, as fixed-size tensors:
    pixel [3,S,S]; per object (padded to MAX_OBJECTS, label -1) targets [4,M,M] and labels [4];
    per prompt points, boxes, regions, kinds and objs (the object each marks)."""

    def __init__(self, cfg, make, prompts, first, length):
        self.cfg, self.make, self.prompts, self.first, self.length = cfg, make, prompts, first, length

    def __len__(self):
        return self.length

    def __getitem__(self, i):
        cfg, rng = self.cfg, np.random.default_rng(self.first + i)
        scene = self.make(self.first + i, rng)
        n = len(scene.objects)
        targets = torch.zeros(MAX_OBJECTS, cfg.mask_size, cfg.mask_size)
        targets[:n] = target_masks(scene.masks, cfg.mask_size)
        labels = torch.full((MAX_OBJECTS,), -1, dtype=torch.int64)
        labels[:n] = torch.tensor([cfg.class_names.index(o.name) for o in scene.objects])
        prompts = self.prompts(scene, rng)
        points, boxes, regions, kinds = prompt_tensors(scene, prompts, cfg)
        return dict(pixel=preprocess(scene.image, cfg)[0][0], targets=targets, labels=labels, points=points,
                    boxes=boxes, regions=regions, kinds=kinds, objs=torch.tensor([p.obj for p in prompts]))


def scene_batches(dataset, batch, workers, device):
    """Batches of `dataset` in order, on `device`."""
    loader = DataLoader(dataset, batch_size=batch, num_workers=workers, pin_memory=device != "cpu")
    for data in loader:
        yield {k: v.to(device, non_blocking=True) for k, v in data.items()}
