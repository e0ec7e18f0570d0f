"""Stage 1b: train the class head alone on top of the frozen stage-1 segmenter.

In the short stage-1 run the masks converge but the sphere classifier (cosine x 100 against fixed random
class embeddings) stays at a hedge near cosine 0 while the features it reads keep moving. With everything
else frozen, only `cls_proj` and `mask_pooling_proj` learn: Hungarian matching on masks alone, class
cross-entropy (background weight 0.1) on the panoptic queries and on point/box/mask prompt queries.

    python3 -m train.classes --run runs/nano --steps 60 [--resume]
"""
import argparse
import os
import time

import numpy as np
import torch
import torch.nn.functional as F

from omg_llava.config import get_config
from omg_llava.pipeline import preprocess
from train.checkpoint import Log, cosine_lr, load, save
from train.data import prompt_tensors, target_masks, train_scene
from train.losses import BACKGROUND_WEIGHT, match
from train.precompute import load_segmenter
from train.stage1 import random_prompts

HEAD = ("panoptic_head.cls_proj.", "panoptic_head.mask_pooling_proj.")


def class_loss(model, scene, cfg, rng):
    head = model.panoptic_head
    with torch.no_grad():
        out = model(preprocess(scene.image, cfg)[0])
        targets = target_masks(scene.masks, cfg.mask_size)
        prompts = random_prompts(scene, rng)
        mems = [out["mem0"], out["mem1"], out["mem2"]]
        q_prompt, _, prompt_masks = model.decode_prompts(out["mask_features"], mems, *prompt_tensors(scene, prompts, cfg))
        Q, K = out["class_logits"].shape[1:]
        q_idx, t_idx = match(torch.zeros(Q, K), out["mask_logits"][0], torch.zeros(len(targets), dtype=torch.int64), targets)
    labels = torch.tensor([cfg.class_names.index(o.name) for o in scene.objects])
    z = head.transformer_decoder.post_norm(out["query_feat"])
    logits = head.classify(z, out["mask_features"], out["mask_logits"])[0]               # [Q,K]
    cls_target = torch.full((Q,), K - 1, dtype=torch.int64)
    cls_target[q_idx] = labels[t_idx]
    weight = torch.ones(K)
    weight[-1] = BACKGROUND_WEIGHT
    panoptic = F.cross_entropy(logits, cls_target, weight=weight)
    z_prompt = head.transformer_decoder.post_norm(q_prompt[:, None])
    prompt_logits = head.classify(z_prompt, out["mask_features"], prompt_masks)[:, 0]     # [N,K]
    return panoptic, F.cross_entropy(prompt_logits, labels[[p.obj for p in prompts]])


def train(cfg, run, steps, images_per_step=4, lr=1e-3, warmup=10, save_every=10, resume=False):
    """Fine-tune the class head of run/stage1.pt in place; progress in run/classes.pt."""
    log = Log(os.path.join(run, "stage1.log"))
    ckpt_path = os.path.join(run, "classes.pt")
    model = load_segmenter(run, cfg)
    params = [p for n, p in model.named_parameters() if n.startswith(HEAD)]
    for n, p in model.named_parameters():
        p.requires_grad_(n.startswith(HEAD))
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    step = 0
    state = load(ckpt_path) if resume else None
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        step = state["step"]
    log(f"classes: head-only steps={steps} images/step={images_per_step} lr={lr} from step {step}")
    t0, sums = time.time(), np.zeros(2)
    while step < steps:
        rng = np.random.default_rng(50_000_000 + step)
        for group in opt.param_groups:
            group["lr"] = cosine_lr(step, steps, lr, warmup)
        opt.zero_grad()
        for k in range(images_per_step):
            scene = train_scene(5_000_000 + step * images_per_step + k, cfg, rng)
            panoptic, prompt = class_loss(model, scene, cfg, rng)
            ((panoptic + prompt) / images_per_step).backward()
            sums += [panoptic.item() / images_per_step, prompt.item() / images_per_step]
        opt.step()
        step += 1
        if step % 10 == 0:
            log(f"classes step {step} panoptic ce {sums[0] / 10:.3f} prompt ce {sums[1] / 10:.3f} "
                f"{(time.time() - t0) / 10:.2f}s/step")
            t0, sums = time.time(), np.zeros(2)
        if step % save_every == 0 or step == steps:
            save(ckpt_path, model=model.state_dict(), optimizer=opt.state_dict(), step=step)
    # The segmenter of record (stage1.pt) now carries the trained head.
    stage1 = load(os.path.join(run, "stage1.pt"))
    stage1["model"] = model.state_dict()
    stage1["classes_steps"] = steps
    save(os.path.join(run, "stage1.pt"), **stage1)
    log("classes done")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", default="runs/nano")
    ap.add_argument("--config", default="nano")
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--images-per-step", type=int, default=4)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--resume", action="store_true")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)  # see train.stage1
    train(get_config(args.config), args.run, args.steps, args.images_per_step, args.lr, resume=args.resume)


if __name__ == "__main__":
    main()
