"""Stage 1c: teach the panoptic queries to own prior cells, backbone and pixel decoder frozen.

The perception prior (spec omg-llava.md §5) gives a query an object token only if it is the argmax of at least one
cell of the G x G prior grid. At 256 px G is 4, so a cell is 64 px: after stages 1-1b only about half the objects'
queries owned a cell (none below ~20 px), and junk queries owned the empty ones, so the LLM saw wrong object
counts. Here the decoder, its heads and the prompt path keep stage 1's set and prompt losses and add
`losses.ownership_loss` on the final stage. Logged: the share of objects whose matched query owns a cell, and of
images whose valid queries are exactly their objects.

With --whole, the backbone and pixel decoder train too (used to adapt a segmenter to a new input size, or to teach
it to part same-coloured shapes: --twins 0.5 draws half the scenes among those with two shapes of one colour). With
--cached, the decoder trains over the stage-2 cache's pixel-decoder outputs (train.precompute) instead of fresh
scenes through the frozen backbone (at 512 px on two cores, 2.2 s a step of 8 against 8.5 s with --whole); then
`train.precompute --refresh` brings the cache's decoder records up to date.

    python3 -m train.ownership --run runs/nano --batch 8 --minutes 20 [--whole [--twins 0.5] | --cached] [--resume]
        [--device cuda --workers 14]
"""
import argparse
import os
import time

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from omg_llava.config import get_config
from omg_llava.prior import prior_grid
from train.cache import load_cache
from train.data import ENDLESS, KINDS, scene_batches
from train.losses import match, ownership_loss
from train.precompute import FEATURES, decode_cached, load_segmenter, stage2_scenes
from train.runs import Log, StepBudget, add_run_options, cosine_lr, load, save
from train.stage1 import PROMPTS_PER_IMAGE, segmenter_losses, training_scenes

FROZEN = ("backbone.", "panoptic_head.pixel_decoder.")
FIRST_SCENE = 6_000_000   # scenes of their own, after stage 1b's
OWNERSHIP_WEIGHT = 2.0
PROMPT_KEYS = ("points", "boxes", "regions", "kinds", "objs")


class CachedScenes(Dataset):
    """Item j: a random stage-2 scene with PROMPTS_PER_IMAGE of the prompts train.precompute drew on it, and its
    index into the cache."""

    def __init__(self, cfg, scenes, first):
        self.tensors, self.scenes, self.first = stage2_scenes(cfg, 0, scenes), scenes, first

    def __len__(self):
        return ENDLESS

    def __getitem__(self, j):
        rng = np.random.default_rng(FIRST_SCENE + self.first + j)
        s = int(rng.integers(self.scenes))
        item = self.tensors[s]
        real = len(KINDS) * int((item["labels"] >= 0).sum())  # the prompts on real objects come first
        keep = torch.from_numpy(rng.choice(real, PROMPTS_PER_IMAGE, replace=False))
        return {k: v[keep] if k in PROMPT_KEYS else v for k, v in item.items()} | {"scene": s}


def cached_batches(cfg, run, batch, workers, device, first):
    """Endless batches of random stage-2 cache scenes, each with its cached pixel-decoder outputs."""
    cache = load_cache(run, FEATURES)
    scenes = CachedScenes(cfg, len(cache["mask_features"]), first)
    for data in DataLoader(scenes, batch_size=batch, num_workers=workers):
        s = data.pop("scene")
        yield {k: v.to(device) for k, v in data.items()} | {k: cache[k][s].to(device).float() for k in FEATURES}


def vision(model, data):
    """The image pass, from the pixels or, where the batch carries them, from cached pixel-decoder outputs."""
    if "mask_features" in data:
        return decode_cached(model, data, all_predictions=True)
    return model(data["pixel"], all_predictions=True)


def batch_loss(model, data, G):
    """-> (segmenter losses, ownership loss, [objects owning a cell, objects, exact images, images])."""
    labels, targets = data["labels"], data["targets"]
    out = vision(model, data)
    seg, prm = segmenter_losses(model, out, data)
    grid = torch.stack([prior_grid(c[None], m[None], G) for c, m in zip(out["class_logits"], out["mask_logits"])])
    pairs = match(out["class_logits"], out["mask_logits"], labels, targets)
    own = ownership_loss(grid, targets, pairs)
    with torch.no_grad():
        valid = torch.zeros_like(grid[:, :, 0], dtype=torch.bool)
        valid.scatter_(1, grid.argmax(1), True)                                       # [B,Q]: owns a cell
        b, q, _ = pairs
        matched = torch.zeros_like(valid)
        matched[b, q] = True
        counts = torch.stack([valid[b, q].sum(), torch.tensor(len(q), device=q.device),
                              (valid == matched).all(1).sum(), torch.tensor(len(valid), device=q.device)])
    return seg + prm, own, counts


def train(cfg, run, steps, batch=8, lr=3e-4, warmup=20, save_every=25, resume=False, device="cpu", workers=0,
          minutes=None, whole=False, cached=False, twins=0.0):
    """Fine-tune the decoder (with `whole`, the whole segmenter; with `cached`, over the stage-2 cache) of
    run/stage1.pt in place; progress in run/ownership.pt."""
    log = Log(os.path.join(run, "stage1.log"))
    ckpt_path = os.path.join(run, "ownership.pt")
    model = load_segmenter(run, cfg).to(device).train()
    for n, p in model.named_parameters():
        p.requires_grad_(whole or not n.startswith(FROZEN))
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.05)
    step = 0
    state = load(ckpt_path) if resume else None
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        step = state["step"]
    mode = " (whole segmenter)" if whole else " (stage-2 cache)" if cached else ""
    mode += f" twins {twins}" if twins else ""
    log(f"ownership{mode}: steps={steps if minutes is None else f'{minutes} min'} batch={batch} lr={lr} "
        f"from step {step}")
    budget = StepBudget(steps, minutes, step, log)
    steps, t0 = budget.steps, time.time()
    sums, counts = torch.zeros(2), torch.zeros(4)
    batches = (cached_batches(cfg, run, batch, workers, device, step * batch) if cached else
               scene_batches(training_scenes(cfg, FIRST_SCENE + step * batch, ENDLESS, twins), batch, workers, device))
    for data in batches:
        if step >= steps:
            break
        for group in opt.param_groups:
            group["lr"] = cosine_lr(step, steps, lr, warmup)
        segmenter, own, batch_counts = batch_loss(model, data, cfg.prior_grid)
        opt.zero_grad()
        (segmenter + OWNERSHIP_WEIGHT * own).backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        step += 1
        sums += torch.stack([segmenter.detach(), own.detach()]).cpu()
        counts += batch_counts.cpu()
        steps = budget.after(step)
        if step % 10 == 0:
            log(f"ownership step {step} segmenter {sums[0] / 10:.3f} ownership {sums[1] / 10:.3f} "
                f"objects owning a cell {counts[0] / counts[1]:.2f} exact images {counts[2] / counts[3]:.2f} "
                f"{(time.time() - t0) / 10:.2f}s/step")
            t0, sums, counts = time.time(), torch.zeros(2), torch.zeros(4)
        if step % save_every == 0 or step == steps:
            save(ckpt_path, model=model.state_dict(), optimizer=opt.state_dict(), step=step)
    # The segmenter of record (stage1.pt) now carries the fine-tuned decoder.
    stage1 = load(os.path.join(run, "stage1.pt"))
    stage1["model"] = model.state_dict()
    stage1["ownership_steps"] = step
    save(os.path.join(run, "stage1.pt"), **stage1)
    log("ownership done")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", default="runs/nano")
    ap.add_argument("--config", default="nano")
    add_run_options(ap, steps=400, batch=8, lr=3e-4, save_every=25, warmup=20)
    frozen = ap.add_mutually_exclusive_group()
    frozen.add_argument("--whole", action="store_true", help="train the backbone and pixel decoder too")
    frozen.add_argument("--cached", action="store_true", help="train over the stage-2 cache's pixel-decoder outputs")
    ap.add_argument("--twins", type=float, default=0.0,
                    help="the share of fresh scenes drawn among those with two shapes of one colour")
    args = ap.parse_args(argv)
    if args.twins and args.cached:
        ap.error("--twins draws fresh scenes; --cached reads the stage-2 cache")
    torch.set_num_threads(args.threads)
    train(get_config(args.config), args.run, args.steps, args.batch, args.lr, args.warmup, args.save_every,
          args.resume, args.device, args.workers, args.minutes, args.whole, args.cached, args.twins)


if __name__ == "__main__":
    main()
