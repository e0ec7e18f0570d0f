"""Stage 2 input: the frozen segmenter's outputs for a fixed set of training scenes, computed once.

Per scene: the vision graph's outputs (mask features, memories and mask logits in float16 to save memory), the
prompt queries (q_final, q_pos) of a point, a box and a mask prompt on every object, and for every object the
panoptic query whose mask overlaps it best (the target of the [SEG] query regression). Each is one array with
the scene first (train.cache keeps them on disk); objects are padded to MAX_OBJECTS.

A run grows the cache to --scenes, appending every CHUNK scenes: a killed run resumes, and a larger --scenes adds
new scenes to the ones there. After a decoder-only fine-tune (train.ownership --cached), --refresh recomputes
everything the decoder makes from the cached backbone and pixel-decoder outputs, which stand.

    python3 -m train.precompute --run runs/nano --scenes 600 [--device cuda --batch 64 --workers 12]
    python3 -m train.precompute --run runs/nano --refresh --batch 16
"""
import argparse
import os
import time

import torch

from omg_llava.config import get_config
from omg_llava.segmenter import OmgSeg
from scenes import make_scene
from train.cache import append_cache, load_cache, scene_count
from train.data import KINDS, MAX_OBJECTS, SceneTensors, every_prompt, scene_batches
from train.runs import Log, load

STAGE2_SEED = 2_000_000   # stage-2 scenes are neither stage-1 nor evaluation scenes
HALF = ("mask_features", "mem0", "mem1", "mem2", "mask_logits")
FULL = ("clip_feature", "query_feat", "query_pos", "class_logits")
FEATURES = ("mask_features", "mem0", "mem1", "mem2", "clip_feature")   # the backbone's and pixel decoder's
CHUNK = 500


def stage2_scene(index, cfg):
    return make_scene(STAGE2_SEED + index, max_side=cfg.image_size)


def stage2_scenes(cfg, first, stop):
    """Stage-2 scenes first..stop-1 with a point, a box and a mask prompt on every object."""
    return SceneTensors(cfg, lambda index, rng: stage2_scene(index, cfg), every_prompt, first, stop - first)


def load_segmenter(run, cfg):
    model = OmgSeg(cfg)
    state = load(os.path.join(run, "stage1.pt"))
    model.load_state_dict(state["model"])
    model.panoptic_head.set_class_embeddings(state["cls_embed"])
    return model.eval()


def decode_cached(model, features, all_predictions=False):
    """The image pass from cached backbone and pixel-decoder outputs {FEATURES name: [B,...] float}."""
    mems = [features[k] for k in ("mem0", "mem1", "mem2")]
    return model.decode_image(features["mask_features"], mems, features["clip_feature"], len(mems[0]), all_predictions)


@torch.no_grad()
def batch_records(model, out, data):
    """One batch of scenes and the image pass over them -> {name: [B,...]} as stored in the cache."""
    # image by image, so that its prompts share its features rather than copy them (ten times faster at 512 px)
    q_final, q_pos, _ = (torch.stack(x) for x in zip(*(
        model.decode_prompts(out["mask_features"][i:i + 1], [out[k][i:i + 1] for k in ("mem0", "mem1", "mem2")],
                             *(data[k][i] for k in ("points", "boxes", "regions", "kinds")))
        for i in range(len(data["kinds"])))))
    pred = (out["mask_logits"] > 0).flatten(2).float()                             # [B,Q,MM]
    targets = (data["targets"] > 0.5).flatten(2).float()                          # [B,N,MM]
    inter = pred @ targets.transpose(1, 2)                                          # [B,Q,N]
    union = pred.sum(-1, keepdim=True) + targets.sum(-1)[:, None] - inter
    B = len(pred)
    records = {k: out[k].half() for k in HALF} | {k: out[k] for k in FULL}
    return records | dict(prompt_q=torch.cat([q_final, q_pos], -1).view(B, MAX_OBJECTS, len(KINDS), -1),
                          best_query=(inter / union.clamp(min=1)).argmax(1))


@torch.no_grad()
def precompute(cfg, run, scenes, batch=1, device="cpu", workers=0):
    """Grow run's stage-2 cache with the frozen segmenter's outputs to `scenes` scenes."""
    log = Log(os.path.join(run, "stage2.log"))
    model = load_segmenter(run, cfg).to(device)
    have, chunk, t0 = scene_count(run), [], time.time()
    if have >= scenes:
        log(f"the cache already holds {have} scenes")
        return
    done = have
    for data in scene_batches(stage2_scenes(cfg, have, scenes), batch, workers, device):
        chunk.append({k: v.cpu() for k, v in batch_records(model, model(data["pixel"]), data).items()})
        done += len(data["pixel"])
        if done - have >= CHUNK or done == scenes:
            append_cache(run, cfg.name, {k: torch.cat([c[k] for c in chunk]) for k in chunk[0]})
            log(f"precomputed {done}/{scenes} scenes ({time.time() - t0:.0f}s)")
            have, chunk = done, []


@torch.no_grad()
def refresh(cfg, run, batch=16, device="cpu", workers=0):
    """Recompute the decoder's records of run's stage-2 cache with run/stage1.pt's decoder, in place (rerun one
    that was killed: scenes it did not reach still hold the old decoder's records)."""
    log = Log(os.path.join(run, "stage2.log"))
    model = load_segmenter(run, cfg).to(device)
    cache = load_cache(run, writable=True)
    scenes, done, t0 = len(cache["mask_features"]), 0, time.time()
    for data in scene_batches(stage2_scenes(cfg, 0, scenes), batch, workers, device):
        rows = slice(done, done + len(data["pixel"]))
        out = decode_cached(model, {k: cache[k][rows].to(device).float() for k in FEATURES})
        for k, v in batch_records(model, out, data).items():
            if k not in FEATURES:
                cache[k][rows] = v.cpu()
        before, done = done, rows.stop
        if done // 500 > before // 500 or done == scenes:
            log(f"refreshed {done}/{scenes} scenes ({time.time() - t0:.0f}s)")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", default="runs/nano")
    ap.add_argument("--config", default="nano")
    ap.add_argument("--scenes", type=int, default=600)
    ap.add_argument("--refresh", action="store_true", help="recompute the decoder's records of the existing cache")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--workers", type=int, default=0)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    if args.refresh:
        refresh(get_config(args.config), args.run, args.batch, args.device, args.workers)
    else:
        precompute(get_config(args.config), args.run, args.scenes, args.batch, args.device, args.workers)


if __name__ == "__main__":
    main()
