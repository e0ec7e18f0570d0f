"""Reference inference, end to end, over `OmgLlava` in PyTorch (spec §3, §7, §8, §9; bundle.md "What the core does").

It mirrors the TypeScript core step by step, so its intermediate tensors can serve as goldens:
preprocess (PIL) -> vision -> prior -> image block; prompts -> prompt embeddings; template and two-chunk
tokenisation -> splice -> greedy generation with a KV cache, capturing [SEG] states -> seg -> masks.
`Conversation` is the stateful part (image features, KV cache, history); the model stays stateless.
"""
import re
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .tokenizer import MARK, REGION, SEG, Tokenizer

IMAGE_ID = -200  # the <image> placeholder in id lists (upstream IMAGE_TOKEN_INDEX); never embedded
KINDS = {"point": 0, "box": 1, "mask": 2}


@dataclass(frozen=True)
class Geometry:
    """Original image -> padded square (side, at pad_left/pad_top) -> S_in model space (spec §3)."""
    width: int
    height: int
    image_size: int   # S_in

    @property
    def side(self): return max(self.width, self.height)
    @property
    def pad_left(self): return (self.side - self.width) // 2
    @property
    def pad_top(self): return (self.side - self.height) // 2

    def point(self, x, y):
        """Original pixel coordinates -> S_in space."""
        s = self.image_size / self.side
        return (x + self.pad_left) * s, (y + self.pad_top) * s

    def region(self, mask):
        """Binary mask [H,W] -> [S_in,S_in] float 0/1: zero padding, then nearest resize with the floor rule."""
        padded = np.zeros((self.side, self.side), np.float32)
        padded[self.pad_top:self.pad_top + self.height, self.pad_left:self.pad_left + self.width] = mask
        src = np.floor(np.arange(self.image_size) * self.side / self.image_size).astype(np.int64)
        return padded[src[:, None], src[None, :]]

    def masks(self, mask_logits):
        """mask_logits [N,1,M,M] -> bool [N,H,W]: bilinear to the padded square, exact crop, logit > 0."""
        up = F.interpolate(mask_logits, size=(self.side, self.side), mode="bilinear", align_corners=False)
        crop = up[:, 0, self.pad_top:self.pad_top + self.height, self.pad_left:self.pad_left + self.width]
        return (crop > 0).numpy()


def preprocess(image: Image.Image, cfg):
    """PIL image -> (pixel_values [1,3,S_in,S_in], Geometry): RGB (no EXIF rotation), pad with pad_color at the
    floor offset, PIL bicubic on uint8, /255, CLIP mean/std."""
    image = image.convert("RGB")
    geometry = Geometry(image.width, image.height, cfg.image_size)
    canvas = Image.new("RGB", (geometry.side, geometry.side), tuple(cfg.pad_color))
    canvas.paste(image, (geometry.pad_left, geometry.pad_top))
    resized = canvas.resize((cfg.image_size, cfg.image_size), Image.BICUBIC)
    x = np.asarray(resized, np.float32) / 255.0
    x = (x - np.array(cfg.mean, np.float32)) / np.array(cfg.std, np.float32)
    return torch.from_numpy(x.transpose(2, 0, 1).copy())[None], geometry


def mask_center(region):
    """[S,S] 0/1 region -> (x, y): the most interior pixel by kornia's ring-peel rule (spec §7.2).

    Largest chessboard distance to the background (outside the mask counts as background); ties: the smallest
    sum of exp(-d/0.35) weights over neighbours one ring further out; then first in row-major order."""
    fg = np.pad(np.asarray(region) > 0.5, 1)
    if not fg.any():
        return 0.0, 0.0
    H, W = fg.shape
    dist = np.where(fg, -1, 0)
    ring = 0
    while (dist < 0).any():  # peel 8-connected rings
        reached = np.pad(dist >= 0, 1)
        near = np.zeros_like(fg)
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                near |= reached[1 + dy:1 + dy + H, 1 + dx:1 + dx + W]
        ring += 1
        dist[(dist < 0) & near] = ring
    # Count orthogonal and diagonal neighbours one ring further out; weigh the integer counts so that equal
    # neighbourhoods give bit-identical sums (a tie then falls to row-major order).
    padded = np.pad(dist, 1, constant_values=-1)
    orth, diag = np.zeros(dist.shape, np.int64), np.zeros(dist.shape, np.int64)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            if dy or dx:
                outer = padded[1 + dy:1 + dy + H, 1 + dx:1 + dx + W] == dist - 1
                (diag if dy and dx else orth)[...] += outer
    w_orth, w_diag = np.exp(-1 / 0.35), np.exp(-np.sqrt(2) / 0.35)
    candidates = np.argwhere(dist == ring)  # row-major order
    best = min(candidates, key=lambda yx: orth[yx[0], yx[1]] * w_orth + diag[yx[0], yx[1]] * w_diag)  # first on ties
    return float(best[1] - 1), float(best[0] - 1)


def prompt_inputs(prompts, geometry: Geometry) -> dict:
    """Prompts in original pixels -> the prompt graph's points [N,2], boxes [N,4], regions [N,S,S], kinds [N].

    A prompt is {"kind": "point", "x", "y"} | {"kind": "box", "x1", "y1", "x2", "y2"} | {"kind": "mask", "mask": [H,W]}."""
    S = geometry.image_size
    points, boxes, regions = np.zeros((len(prompts), 2), np.float32), np.zeros((len(prompts), 4), np.float32), np.zeros((len(prompts), S, S), np.float32)
    for i, p in enumerate(prompts):
        if p["kind"] == "point":
            points[i] = geometry.point(p["x"], p["y"])
        elif p["kind"] == "box":
            boxes[i] = geometry.point(p["x1"], p["y1"]) + geometry.point(p["x2"], p["y2"])
        else:
            regions[i] = geometry.region(p["mask"])
            points[i] = mask_center(regions[i])
    kinds = np.array([KINDS[p["kind"]] for p in prompts], np.int64)
    return {"points": torch.from_numpy(points), "boxes": torch.from_numpy(boxes),
            "regions": torch.from_numpy(regions), "kinds": torch.from_numpy(kinds)}


@dataclass
class Turn:
    """What one `ask` fed and produced (ids are the new ids fed this turn; IMAGE_ID marks the image block)."""
    ids: list
    prompt_inputs: dict                # the prompt graph's inputs (points, boxes, regions, kinds), this turn's prompts
    prompt_embeds: torch.Tensor        # [N,D]
    inputs_embeds: torch.Tensor        # [T,D] spliced
    prompt_logits: torch.Tensor        # [V] at the last prompt position
    generated: list                    # ends with the stop id unless max_new_tokens was hit
    margins: list                      # top-1 minus top-2 logit at every greedy step
    seg_hidden: torch.Tensor           # [N,D]
    mask_logits: torch.Tensor          # [N,1,M,M]
    masks: np.ndarray                  # bool [N,H,W]
    text: str


class Conversation:
    """One image, many turns: the image pass runs once, the KV cache carries the history."""

    def __init__(self, model, tokenizer: Tokenizer, template: dict, image: Image.Image):
        self.model, self.tokenizer, self.template = model, tokenizer, template
        with torch.no_grad():
            self.pixel_values, self.geometry = preprocess(image, model.cfg)
            self.vision = model.vision(self.pixel_values)
            self.prior = model.prior(*(self.vision[k] for k in ("clip_feature", "query_feat", "query_pos", "class_logits", "mask_logits")))
            pixel_tokens, separator, object_tokens, valid = self.prior
            self.image_block = torch.cat([pixel_tokens, separator, object_tokens[valid]])  # [P+1+n, D]
        self.features = [self.vision[k] for k in ("mask_features", "mem0", "mem1", "mem2")]
        self.stop_ids = {tokenizer.token_id("</s>")} | {tokenizer.token_id(s) for s in template["stop"]}
        self.past, self.length = None, 0        # KV cache and the number of tokens in it
        self.pending = []                        # ids generated but not yet fed (the stop word)
        self.embeds = {MARK: [], REGION: []}     # prompt embeddings per placeholder, in order of appearance
        self.used = {MARK: 0, REGION: 0}         # how many of each list the history has consumed

    def turn_ids(self, question):
        """The new ids of a turn: first turn = BOS + chunk 0, image, chunk 1; later turns continue the history."""
        tok, t = self.tokenizer, self.template
        if self.past is None:
            before, after = t["user"].format(input=t["image"] + "\n" + question).split(t["image"])
            return tok.encode(before, add_bos=True) + [IMAGE_ID] + tok.encode(after)
        return self.pending + tok.encode(t["separator"] + t["user"].format(input=question))

    def add_prompts(self, question, prompts):
        """Embed `prompts`; prompts[i] fills the i-th <mark>/<region> of `question` -> (prompt inputs, embeds [N,D])."""
        placeholders = re.findall(f"{re.escape(MARK)}|{re.escape(REGION)}", question)
        if len(placeholders) != len(prompts):
            raise ValueError(f"the question has {len(placeholders)} <mark>/<region> placeholders but {len(prompts)} prompts")
        inputs = prompt_inputs(list(prompts), self.geometry)
        embeds = self.model.prompt(*self.features, **inputs) if prompts else torch.zeros(0, self.model.cfg.llm.hidden_size)
        for placeholder, e in zip(placeholders, embeds):
            self.embeds[placeholder].append(e)
        return inputs, embeds

    def splice(self, ids):
        """ids -> inputs_embeds [T,D]: the image block for IMAGE_ID, the next embedding of its list for each
        <mark>/<region>, token embeddings elsewhere."""
        lists = {self.tokenizer.token_id(MARK): MARK, self.tokenizer.token_id(REGION): REGION}
        parts = []
        for i in ids:
            if i == IMAGE_ID:
                parts.append(self.image_block)
            elif i in lists:
                key = lists[i]
                parts.append(self.embeds[key][self.used[key]][None])
                self.used[key] += 1
            else:
                parts.append(self.model.embed(torch.tensor([[i]]))[0])
        return torch.cat(parts)

    def step(self, embeds):
        """Feed embeds [T,D] after the cache -> (logits [T,V], last_hidden [T,D])."""
        T = embeds.shape[0]
        positions = torch.arange(self.length, self.length + T)[None]
        mask = torch.ones(1, self.length + T, dtype=torch.int64)
        logits, hidden, self.past = self.model.llm(embeds[None], positions, mask, self.past)
        self.length += T
        return logits[0], hidden[0]

    def greedy(self, logits, max_new_tokens):
        """Greedy decoding from the prefill logits [T,V] -> (generated ids, margins, [SEG] states [N,D])."""
        generated, margins, seg_hidden = [], [], []
        seg_id = self.tokenizer.token_id(SEG)
        while True:
            top = logits[-1].topk(2)
            next_id = int(top.indices[0])
            margins.append(float(top.values[0] - top.values[1]))
            generated.append(next_id)
            if next_id in self.stop_ids or len(generated) == max_new_tokens:
                break
            logits, hidden = self.step(self.model.embed(torch.tensor([[next_id]]))[0])
            if next_id == seg_id:  # the [SEG] state is the one where [SEG] is the input
                seg_hidden.append(hidden[-1])
        # The last id was never fed; the history also ends with the stop word when generation hit the limit.
        stop = [] if next_id in self.stop_ids else [self.tokenizer.token_id(self.template["stop"][0])]
        self.pending = generated[-1:] + stop
        return generated, margins, torch.stack(seg_hidden) if seg_hidden else torch.zeros(0, self.model.cfg.llm.hidden_size)

    @torch.no_grad()
    def ask(self, question, prompts=(), max_new_tokens=256) -> Turn:
        """Greedy answer to `question`; prompts[i] fills the i-th <mark>/<region> placeholder of the question."""
        inputs, prompt_embeds = self.add_prompts(question, prompts)
        ids = self.turn_ids(question)
        inputs_embeds = self.splice(ids)
        logits, _ = self.step(inputs_embeds)
        generated, margins, seg_hidden = self.greedy(logits, max_new_tokens)
        M = self.model.cfg.mask_size
        mask_logits = self.model.seg(seg_hidden, *self.features) if len(seg_hidden) else torch.zeros(0, 1, M, M)
        return Turn(ids, inputs, prompt_embeds, inputs_embeds, logits[-1], generated, margins, seg_hidden, mask_logits,
                    self.geometry.masks(mask_logits), self.tokenizer.decode(generated))
