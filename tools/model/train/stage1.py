"""Stage 1: train the nano segmenter (OmgSeg) on synthetic scenes.

Per image: Hungarian-matched class CE + mask BCE/dice on every decoder stage (panoptic queries), and
BCE/dice of visual-prompt decoding (random point, box and mask prompts on objects) against the
prompted object's mask, so prompt queries learn to carry their object. The class head compares with
`cls_embed`, fixed random unit vectors (the head's seeded default), saved in the checkpoint.

    python3 -m train.stage1 --run runs/nano --steps 3400 [--resume]
"""
import argparse
import os
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from omg_llava.config import get_config
from omg_llava.segmenter import OmgSeg
from scenes.texts import Prompt, interior_point
from train.checkpoint import Log, cosine_lr, load, save
from omg_llava.pipeline import preprocess
from train.data import prompt_tensors, target_masks, train_scene
from train.losses import CLASS_WEIGHT, mask_loss, set_loss

PROMPTS_PER_IMAGE = 3
AUX_WEIGHT = 5.0
# ConvNeXt's layer-scale init (1e-6) suits fine-tuning; from scratch in minutes it keeps the blocks switched off
# (the backbone stays nearly linear: colour but no shape), so fresh runs start the gammas here.
LAYER_SCALE_INIT = 0.3


class ShapeProbe(nn.Module):
    """Training-only linear classifier on mask-pooled features (mask features, mem2, the stride-32 map).

    The class head alone did not make the features separate shapes within a short run (linear probes on
    them stayed at chance for shape, ~0.93 for colour); this direct pressure is what the class head, the
    object tokens and the prompt queries then read. Not part of the exported model."""

    def __init__(self, cfg):
        super().__init__()
        self.linear = nn.Linear(2 * cfg.decoder_dim + cfg.clip_channels, cfg.num_classes)

    def forward(self, out, targets):
        """targets [n,M,M] -> class logits [n,K-1] from each feature map averaged over each object."""
        pooled = []
        for f in (out["mask_features"], out["mem2"], out["clip_feature"]):
            w = F.adaptive_avg_pool2d(targets[:, None], f.shape[-1])[:, 0]        # [n,h,w]
            pooled.append(torch.einsum("chw,nhw->nc", f[0], w / (w.sum((-2, -1), keepdim=True) + 1e-6)))
        return self.linear(torch.cat(pooled, -1))


def random_prompts(scene, rng):
    """Up to PROMPTS_PER_IMAGE prompts of random kinds on random objects."""
    out = []
    for _ in range(PROMPTS_PER_IMAGE):
        i = int(rng.integers(len(scene.objects)))
        kind = ("point", "box", "mask")[rng.integers(3)]
        point = interior_point(scene.masks[i], rng) if kind == "point" else None
        out.append(Prompt(kind, i, point=point))
    return out


def image_loss(model, probe, scene, cfg, rng):
    """Panoptic set loss over all stages + prompt loss (masks on all stages, class of the last), for one scene."""
    pixel, _ = preprocess(scene.image, cfg)
    targets = target_masks(scene.masks, cfg.mask_size)                         # [n,M,M]
    labels = torch.tensor([cfg.class_names.index(o.name) for o in scene.objects])
    out = model(pixel, all_predictions=True)
    seg = sum(set_loss(c[0], m[0], labels, targets) for c, m in out["predictions"]) / len(out["predictions"])
    seg = seg + AUX_WEIGHT * F.cross_entropy(probe(out, targets), labels)
    prompts = random_prompts(scene, rng)
    points, boxes, regions, kinds = prompt_tensors(scene, prompts, cfg)
    mems = [out["mem0"], out["mem1"], out["mem2"]]
    q, _, stages = model.decode_prompts(out["mask_features"], mems, points, boxes, regions, kinds, all_predictions=True)
    objs = [p.obj for p in prompts]
    prm = sum(mask_loss(m[:, 0], targets[objs]) for m in stages) / len(stages)
    # The class head on prompt queries too, so a prompt query states what it marks (read by region captions).
    head = model.panoptic_head
    class_logits = head.classify(head.transformer_decoder.post_norm(q[:, None]), out["mask_features"], stages[-1])
    prm = prm + CLASS_WEIGHT * F.cross_entropy(class_logits[:, 0], labels[objs])
    return seg, prm


def train(cfg, run, steps, images_per_step=1, lr=5e-4, warmup=50, save_every=25, resume=False):
    """Train (or resume) the segmenter of `cfg`; checkpoint and log in `run`."""
    os.makedirs(run, exist_ok=True)
    log = Log(os.path.join(run, "stage1.log"))
    ckpt_path = os.path.join(run, "stage1.pt")
    torch.manual_seed(0)
    model = OmgSeg(cfg)
    with torch.no_grad():
        for name, p in model.backbone.named_parameters():
            if name.endswith("gamma"):
                p.fill_(LAYER_SCALE_INIT)
    probe = ShapeProbe(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.05)
    probe_opt = torch.optim.AdamW(probe.parameters(), lr=lr, weight_decay=0.0)
    step = 0
    state = load(ckpt_path) if resume else None
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        step = state["step"]
        if "probe" in state:  # runs before the probe existed resume with a fresh one
            probe.load_state_dict(state["probe"])
            probe_opt.load_state_dict(state["probe_optimizer"])
        log(f"resumed at step {step}")
    log(f"stage1 config={cfg.name} steps={steps} images/step={images_per_step} lr={lr}")

    model.train()
    t0, seg_sum, prm_sum = time.time(), 0.0, 0.0
    while step < steps:
        rng = np.random.default_rng(step)
        for group in opt.param_groups + probe_opt.param_groups:
            group["lr"] = cosine_lr(step, steps, lr, warmup)
        opt.zero_grad()
        probe_opt.zero_grad()
        for k in range(images_per_step):
            scene = train_scene(step * images_per_step + k, cfg, rng)
            seg, prm = image_loss(model, probe, scene, cfg, rng)
            ((seg + prm) / images_per_step).backward()
            seg_sum, prm_sum = seg_sum + seg.item(), prm_sum + prm.item()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        probe_opt.step()
        step += 1
        if step % 10 == 0:
            n = 10 * images_per_step
            log(f"step {step} seg {seg_sum / n:.3f} prompt {prm_sum / n:.3f} lr {opt.param_groups[0]['lr']:.2e} "
                f"{(time.time() - t0) / 10:.2f}s/step")
            t0, seg_sum, prm_sum = time.time(), 0.0, 0.0
        if step % save_every == 0 or step == steps:
            save(ckpt_path, model=model.state_dict(), optimizer=opt.state_dict(), step=step,
                 probe=probe.state_dict(), probe_optimizer=probe_opt.state_dict(),
                 cls_embed=model.panoptic_head.cls_embed, config=cfg.name)
    log("stage1 done")
    return model


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", default="runs/nano")
    ap.add_argument("--config", default="nano")
    ap.add_argument("--steps", type=int, default=3400)
    ap.add_argument("--images-per-step", type=int, default=1)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--save-every", type=int, default=25)
    ap.add_argument("--resume", action="store_true")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)  # measured: 2 threads spin against the other jobs on this 2-core box and run ~10x slower
    train(get_config(args.config), args.run, args.steps, args.images_per_step, args.lr, args.warmup,
          args.save_every, args.resume)


if __name__ == "__main__":
    main()
