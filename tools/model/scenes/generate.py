"""Synthetic scenes: 1-4 flat-coloured shapes on a light background, with exact instance masks.

A scene is a pure function of its seed (and optional `max_side`), so training and evaluation
sets are reproducible without storing images. Objects are drawn bottom to top; each mask holds
only the visible part of its object, and every object keeps at least `MIN_VISIBLE` of its own
area, so every question about it stays answerable.
"""
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from omg_llava.config import COLOURS, SCENE_CLASSES, SHAPES

RGB = {  # base colours; each object jitters them slightly
    "red": (220, 40, 40), "green": (40, 170, 60), "blue": (40, 80, 220),
    "yellow": (240, 200, 30), "purple": (140, 60, 180), "orange": (245, 130, 30),
}
MIN_VISIBLE = 0.35     # visible fraction of an object's own area
MIN_SIDE, MAX_SIDE = 200, 1200
MAX_ASPECT = 2.5       # beyond this the short side shrinks objects below the model's mask resolution


@dataclass(frozen=True)
class SceneObject:
    colour: str
    shape: str
    bbox: tuple      # (x1, y1, x2, y2) of the visible mask, end-exclusive, pixels
    centre: tuple    # (x, y) centre of the drawn shape, pixels
    area: int        # visible pixels

    @property
    def name(self): return f"{self.colour} {self.shape}"

    @property
    def class_id(self): return SCENE_CLASSES.index(self.name)


@dataclass
class Scene:
    image: Image.Image      # RGB, width x height
    masks: np.ndarray       # [n, height, width] bool, visible parts, index = z-order (0 at the bottom)
    objects: list           # n SceneObject, same order as masks
    order: list = None      # the order lists name the objects in; left to right unless a trainer sets it

    @property
    def size(self): return self.image.size   # (width, height)


def _sample_size(rng, max_side):
    long = rng.integers(MIN_SIDE, MAX_SIDE + 1)
    aspect = 1.0 if rng.random() < 0.3 else rng.uniform(1.0, MAX_ASPECT)
    short = max(MIN_SIDE, int(round(long / aspect)))
    w, h = (long, short) if rng.random() < 0.5 else (short, long)
    if max_side is not None:  # keep the aspect ratio, rescale to the model's side
        scale = max_side / max(w, h)
        w, h = max(1, round(w * scale)), max(1, round(h * scale))
    return int(w), int(h)


def _polygon(shape, cx, cy, r):
    """Vertices of a shape of half-extent r around (cx, cy); None for a circle."""
    if shape == "square":
        s = 0.85 * r
        return [(cx - s, cy - s), (cx + s, cy - s), (cx + s, cy + s), (cx - s, cy + s)]
    if shape == "triangle":  # equilateral, pointing up, centred on its circumcentre
        return [(cx + r * math.cos(a), cy - r * math.sin(a)) for a in (math.pi / 2, 7 * math.pi / 6, 11 * math.pi / 6)]
    if shape == "star":      # five points, inner radius 0.45 of the outer one
        pts = []
        for k in range(10):
            rad = r if k % 2 == 0 else 0.45 * r
            a = math.pi / 2 + k * math.pi / 5
            pts.append((cx + rad * math.cos(a), cy - rad * math.sin(a)))
        return pts
    return None


def _draw_mask(shape, cx, cy, r, w, h):
    img = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(img)
    poly = _polygon(shape, cx, cy, r)
    if poly is None:
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=1)
    else:
        draw.polygon(poly, fill=1)
    return np.asarray(img, dtype=bool)


def _place(rng, w, h, n):
    """Sample n shapes; returns (specs, full masks) or None when some object is too hidden."""
    lo, hi = 0.06 * max(w, h), 0.42 * min(w, h)
    hi = max(hi, lo)
    specs, full = [], []
    for _ in range(n):
        shape = SHAPES[rng.integers(len(SHAPES))]
        colour = COLOURS[rng.integers(len(COLOURS))]
        r = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))  # log-uniform: small and large equally often
        cx, cy = rng.uniform(r, w - r), rng.uniform(r, h - r)
        specs.append((colour, shape, cx, cy, r))
        full.append(_draw_mask(shape, cx, cy, r, w, h))
    visible = [m.copy() for m in full]
    for i in range(n):           # later objects cover earlier ones
        for j in range(i + 1, n):
            visible[i] &= ~full[j]
    for f, v in zip(full, visible):
        if v.sum() < MIN_VISIBLE * f.sum() or v.sum() < 16:
            return None
    return specs, visible


def _background(rng, w, h):
    base = rng.integers(222, 256, size=3)
    img = np.broadcast_to(base, (h, w, 3)).astype(np.float32)
    if rng.random() < 0.5:  # mildly noisy
        img = img + rng.normal(0.0, rng.uniform(2.0, 7.0), size=(h, w, 3))
    return img


def make_scene(seed: int, max_side: int = None, num_objects: int = None) -> Scene:
    """The scene of `seed`: real sizes (sides 200-1200 px), or rescaled so the longer side is `max_side`."""
    rng = np.random.default_rng(seed)
    w, h = _sample_size(rng, max_side)
    n = int(num_objects or rng.integers(1, 5))
    placed, tries = None, 0
    while placed is None:
        placed, tries = _place(rng, w, h, n), tries + 1
        if tries % 200 == 0:  # too crowded for this canvas: drop one object
            n = max(1, n - 1)
    specs, masks = placed
    img = _background(rng, w, h)
    objects = []
    for (colour, shape, cx, cy, r), m in zip(specs, masks):
        rgb = np.clip(np.array(RGB[colour]) + rng.integers(-12, 13, size=3), 0, 255)
        img[m] = rgb
        ys, xs = np.nonzero(m)
        objects.append(SceneObject(colour, shape, (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1),
                                   (float(cx), float(cy)), int(m.sum())))
    image = Image.fromarray(np.clip(np.rint(img), 0, 255).astype(np.uint8), "RGB")
    return Scene(image, np.stack(masks), objects)
