"""Stage 1b: train the class head alone on top of the frozen stage-1 segmenter.

In the short stage-1 run the masks converge but the sphere classifier (cosine x 100 against fixed random
class embeddings) stays at a hedge near cosine 0 while the features it reads keep moving. With everything
else frozen, only `cls_proj` and `mask_pooling_proj` learn: Hungarian matching on masks alone, class
cross-entropy (background weight 0.1) on the panoptic queries and on point/box/mask prompt queries.

    python3 -m train.classes --run runs/nano --steps 60 [--resume] [--device cuda --batch 32]
"""
import argparse
import os
import time

import torch
import torch.nn.functional as F

from omg_llava.config import get_config
from train.data import scene_batches
from train.losses import class_loss, match
from train.precompute import load_segmenter
from train.runs import Log, add_run_options, cosine_lr, load, save
from train.stage1 import decode_batch_prompts, training_scenes

HEAD = ("panoptic_head.cls_proj.", "panoptic_head.mask_pooling_proj.")
FIRST_SCENE = 5_000_000   # scenes of their own, after any stage-1 run's


def batch_loss(model, data):
    head = model.panoptic_head
    labels = data["labels"]
    with torch.no_grad():
        out = model(data["pixel"])
        img, objs, features, (q_prompt, _, prompt_masks) = decode_batch_prompts(model, out, data)
        pairs = match(torch.zeros_like(out["class_logits"]), out["mask_logits"], labels, data["targets"])
    z = head.transformer_decoder.post_norm(out["query_feat"])
    panoptic = class_loss(head.classify(z, out["mask_features"], out["mask_logits"]), labels, pairs)
    z_prompt = head.transformer_decoder.post_norm(q_prompt[:, None])
    prompt_logits = head.classify(z_prompt, features, prompt_masks[-1])[:, 0]                # [B*P,K]
    return panoptic, F.cross_entropy(prompt_logits, labels[img, objs])


def train(cfg, run, steps, batch=4, lr=1e-3, warmup=10, save_every=10, resume=False, device="cpu", workers=0):
    """Fine-tune the class head of run/stage1.pt in place; progress in run/classes.pt."""
    log = Log(os.path.join(run, "stage1.log"))
    ckpt_path = os.path.join(run, "classes.pt")
    model = load_segmenter(run, cfg).to(device)
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
    log(f"classes: head-only steps={steps} batch={batch} lr={lr} from step {step}")
    t0, sums = time.time(), torch.zeros(2, device=device)
    for data in scene_batches(training_scenes(cfg, FIRST_SCENE + step * batch, (steps - step) * batch), batch,
                              workers, device):
        for group in opt.param_groups:
            group["lr"] = cosine_lr(step, steps, lr, warmup)
        panoptic, prompt = batch_loss(model, data)
        opt.zero_grad()
        (panoptic + prompt).backward()
        opt.step()
        step += 1
        sums += torch.stack([panoptic.detach(), prompt.detach()])
        if step % 10 == 0:
            panoptic_avg, prompt_avg = (sums / 10).tolist()
            log(f"classes step {step} panoptic ce {panoptic_avg:.3f} prompt ce {prompt_avg:.3f} "
                f"{(time.time() - t0) / 10:.2f}s/step")
            t0, sums = time.time(), torch.zeros(2, device=device)
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
    add_run_options(ap, steps=60, batch=4, lr=1e-3, save_every=10, warmup=10, timed=False)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    train(get_config(args.config), args.run, args.steps, args.batch, args.lr, args.warmup, args.save_every,
          args.resume, args.device, args.workers)


if __name__ == "__main__":
    main()
