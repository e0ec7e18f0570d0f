"""Stage 2 input: the frozen segmenter's outputs for a fixed set of training scenes, computed once.

Per scene: the vision graph's outputs (mask features and memories in float16 to save memory), the
prompt queries (q_final, q_pos) of a point, a box and a mask prompt on every object, and for every
object the panoptic query whose mask overlaps it best (the target of the [SEG] query regression).

    python3 -m train.precompute --run runs/nano --scenes 600
"""
import argparse
import os
import time

import numpy as np
import torch

from omg_llava.config import get_config
from omg_llava.pipeline import preprocess
from omg_llava.segmenter import OmgSeg
from scenes import make_scene
from scenes.texts import Prompt, interior_point
from train.checkpoint import Log, load, save
from train.data import prompt_tensors, target_masks

STAGE2_SEED = 2_000_000   # stage-2 scenes are neither stage-1 nor evaluation scenes
KIND_ORDER = ("point", "box", "mask")


def stage2_scene(index, cfg):
    return make_scene(STAGE2_SEED + index, max_side=cfg.image_size)


def load_segmenter(run, cfg):
    model = OmgSeg(cfg)
    state = load(os.path.join(run, "stage1.pt"))
    model.load_state_dict(state["model"])
    model.panoptic_head.set_class_embeddings(state["cls_embed"])
    return model.eval()


@torch.no_grad()
def scene_record(model, scene, cfg, rng):
    out = model(preprocess(scene.image, cfg)[0])
    n = len(scene.objects)
    prompts = [Prompt(kind, i, point=interior_point(scene.masks[i], rng) if kind == "point" else None)
               for i in range(n) for kind in KIND_ORDER]
    mems = [out["mem0"], out["mem1"], out["mem2"]]
    q_final, q_pos, _ = model.decode_prompts(out["mask_features"], mems, *prompt_tensors(scene, prompts, cfg))
    targets = target_masks(scene.masks, cfg.mask_size) > 0.5                       # [n,M,M]
    pred = out["mask_logits"][0] > 0                                                # [Q,M,M]
    inter = (pred[:, None] & targets[None]).flatten(2).sum(-1).float()
    union = (pred[:, None] | targets[None]).flatten(2).sum(-1).float()
    best_query = (inter / union.clamp(min=1)).argmax(0)                            # [n]
    half = {k: out[k].half() for k in ("mask_features", "mem0", "mem1", "mem2", "mask_logits")}
    full = {k: out[k] for k in ("clip_feature", "query_feat", "query_pos", "class_logits")}
    return dict(half, **full, prompt_q=torch.cat([q_final, q_pos], -1).view(n, len(KIND_ORDER), -1),
                best_query=best_query)


def precompute(cfg, run, scenes):
    """Cache the frozen segmenter's outputs for `scenes` stage-2 scenes in run/stage2_cache.pt."""
    log = Log(os.path.join(run, "stage2.log"))
    model = load_segmenter(run, cfg)
    records, t0 = [], time.time()
    for i in range(scenes):
        records.append(scene_record(model, stage2_scene(i, cfg), cfg, np.random.default_rng(i)))
        if (i + 1) % 100 == 0:
            log(f"precomputed {i + 1}/{scenes} scenes ({time.time() - t0:.0f}s)")
    save(os.path.join(run, "stage2_cache.pt"), records=records, config=cfg.name)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", default="runs/nano")
    ap.add_argument("--config", default="nano")
    ap.add_argument("--scenes", type=int, default=600)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    precompute(get_config(args.config), args.run, args.scenes)


if __name__ == "__main__":
    main()
