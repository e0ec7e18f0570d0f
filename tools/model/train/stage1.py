"""Stage 1: train the nano segmenter (OmgSeg) on synthetic scenes.

Per batch of images: Hungarian-matched class CE + mask BCE/dice on every decoder stage (panoptic queries), and
BCE/dice of visual-prompt decoding (random point, box and mask prompts on objects) against the
prompted object's mask, so prompt queries learn to carry their object. The class head compares with
`cls_embed`, fixed random unit vectors (the head's seeded default), saved in the checkpoint.

    python3 -m train.stage1 --run runs/nano --steps 3400 [--resume] [--device cuda --batch 48 --workers 14 --minutes 3.5]
"""
import argparse
import os
import time

import torch
import torch.nn.functional as F
from torch import nn

from omg_llava.config import get_config
from omg_llava.segmenter import OmgSeg
from train.data import ENDLESS, SceneTensors, random_prompts, scene_batches, train_scene
from train.losses import CLASS_WEIGHT, mask_loss, set_loss
from train.runs import Log, StepBudget, add_run_options, cosine_lr, load, save

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
        """targets [B,N,M,M] -> class logits [B,N,K-1] from each feature map averaged over each object."""
        pooled = []
        for f in (out["mask_features"], out["mem2"], out["clip_feature"]):
            w = F.adaptive_avg_pool2d(targets, f.shape[-1])                                   # [B,N,h,w]
            pooled.append(torch.einsum("bchw,bnhw->bnc", f, w / (w.sum((-2, -1), keepdim=True) + 1e-6)))
        return self.linear(torch.cat(pooled, -1))


def training_scenes(cfg, first, length, twins=0.0):
    return SceneTensors(cfg, lambda index, rng: train_scene(index, cfg, rng, twins),
                        lambda scene, rng: random_prompts(scene, rng, PROMPTS_PER_IMAGE), first, length)


def decode_batch_prompts(model, out, data):
    """Every prompt of the batch decoded alone over its own image -> (image index [B*P], object index [B*P],
    features [B*P,C,M,M], decode_prompts' (q [B*P,C], q_pos [B*P,C], mask logits of every stage))."""
    B, P = data["kinds"].shape
    img = torch.arange(B, device=data["kinds"].device).repeat_interleave(P)
    features, mems = out["mask_features"][img], [out[k][img] for k in ("mem0", "mem1", "mem2")]
    flat = [data[k].flatten(0, 1) for k in ("points", "boxes", "regions", "kinds")]
    return img, data["objs"].flatten(), features, model.decode_prompts(features, mems, *flat, all_predictions=True)


def segmenter_losses(model, out, data):
    """Panoptic set loss over all stages + prompt loss (masks on all stages, class of the last), for one batch."""
    labels, targets = data["labels"], data["targets"]
    seg = sum(set_loss(c, m, labels, targets) for c, m in out["predictions"]) / len(out["predictions"])
    img, objs, features, (q, _, stages) = decode_batch_prompts(model, out, data)
    prm = sum(mask_loss(m[:, 0], targets[img, objs]) for m in stages) / len(stages)
    # The class head on prompt queries too, so a prompt query states what it marks (read by region captions).
    head = model.panoptic_head
    class_logits = head.classify(head.transformer_decoder.post_norm(q[:, None]), features, stages[-1])
    prm = prm + CLASS_WEIGHT * F.cross_entropy(class_logits[:, 0], labels[img, objs])
    return seg, prm


def batch_loss(model, probe, data):
    """The segmenter losses, the shape probe's added to the panoptic one."""
    out = model(data["pixel"], all_predictions=True)
    seg, prm = segmenter_losses(model, out, data)
    valid = data["labels"] >= 0
    return seg + AUX_WEIGHT * F.cross_entropy(probe(out, data["targets"])[valid], data["labels"][valid]), prm


def train(cfg, run, steps, batch=1, lr=5e-4, warmup=50, save_every=25, resume=False, device="cpu", workers=0,
          minutes=None):
    """Train (or resume) the segmenter of `cfg`; checkpoint and log in `run`. With `minutes`, `steps` is replaced by
    as many steps as fit in that time (runs.StepBudget)."""
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
    model.to(device)
    probe.to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.05)
    probe_opt = torch.optim.AdamW(probe.parameters(), lr=lr, weight_decay=0.0)
    step = 0
    state = load(ckpt_path) if resume else None
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        probe.load_state_dict(state["probe"])
        probe_opt.load_state_dict(state["probe_optimizer"])
        step = state["step"]
        log(f"resumed at step {step}")
    log(f"stage1 config={cfg.name} steps={steps if minutes is None else f'{minutes} min'} batch={batch} lr={lr} "
        f"device={device}")

    model.train()
    budget = StepBudget(steps, minutes, step, log)
    steps, t0, sums = budget.steps, time.time(), torch.zeros(2, device=device)
    for data in scene_batches(training_scenes(cfg, step * batch, ENDLESS), batch, workers, device):
        if step >= steps:
            break
        for group in opt.param_groups + probe_opt.param_groups:
            group["lr"] = cosine_lr(step, steps, lr, warmup)
        seg, prm = batch_loss(model, probe, data)
        opt.zero_grad()
        probe_opt.zero_grad()
        (seg + prm).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        probe_opt.step()
        step += 1
        sums += torch.stack([seg.detach(), prm.detach()])
        steps = budget.after(step)
        if step % 10 == 0:
            seg_avg, prm_avg = (sums / 10).tolist()
            log(f"step {step} seg {seg_avg:.3f} prompt {prm_avg:.3f} lr {opt.param_groups[0]['lr']:.2e} "
                f"{(time.time() - t0) / 10:.2f}s/step")
            t0, sums = time.time(), torch.zeros(2, device=device)
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
    add_run_options(ap, steps=3400, batch=1, lr=5e-4, save_every=25)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    train(get_config(args.config), args.run, args.steps, args.batch, args.lr, args.warmup, args.save_every,
          args.resume, args.device, args.workers, args.minutes)


if __name__ == "__main__":
    main()
