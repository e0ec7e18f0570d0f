"""Stage 2: train projector, text2vision and the LLM on every scene task, the segmenter frozen.

Inputs are the cached segmenter outputs (train.precompute). Per batch of conversations:
  - the image block (perception prior + projector) and prompt embeddings are spliced into the text embeddings;
  - LM cross-entropy on answer tokens only;
  - every [SEG]: text2vision(hidden state where [SEG] is the input) -> frozen decode_seg -> BCE + dice against
    the object's mask on every stage, plus an MSE to the object's best panoptic [query_feat, query_pos]
    (as upstream's pretrain regressed object queries), which gives the mask loss a good start.

    python3 -m train.stage2 --run runs/nano --steps 6500 [--resume]
"""
import argparse
import os
import time
from dataclasses import replace

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from export.bundle import load_tokenizer
from omg_llava.config import get_config
from omg_llava.llm import InternLM2
from omg_llava.prior import Projector, TextToVision, perception_prior
from omg_llava.tokenizer import MARK, REGION, SEG
from scenes.texts import random_sample
from train.checkpoint import Log, cosine_lr, load, save
from train.data import target_masks
from train.losses import mask_loss
from train.precompute import KIND_ORDER, load_segmenter, stage2_scene
from train.sequences import IMAGE_ID, conversation_ids

TASK_WEIGHTS = {"refer": 0.2, "gcg": 0.15, "region": 0.2, "count": 0.12, "colour": 0.06, "shape": 0.06,
                "caption": 0.06, "relation": 0.05, "multi": 0.1}
SEG_WEIGHT, QUERY_MSE_WEIGHT = 1.0, 1.0


class LlmSide(nn.Module):
    """The trainable part, under OmgLlava's attribute names (so its state dict keys are OmgLlava's)."""

    def __init__(self, cfg):
        super().__init__()
        self.projector = nn.ModuleDict({"model": Projector(cfg)})
        self.projector_text2vision = TextToVision(cfg)
        self.llm = InternLM2(cfg.llm)


def nano_config(tok, name="nano"):
    cfg = get_config(name)
    return replace(cfg, llm=replace(cfg.llm, vocab_rows=tok.vocab_rows))


def image_block(side, rec):
    """The LLM-space visual tokens of one cached scene: [P + 1 + n_valid, D]."""
    pixel, sep, objects, valid = perception_prior(rec["clip_feature"], rec["query_feat"], rec["query_pos"],
                                                  rec["class_logits"], rec["mask_logits"].float(), side.projector["model"])
    return torch.cat([pixel, sep, objects[valid]])


def embed_sample(side, tok, sample, rec):
    """-> (inputs [T',D], target [T'] bool, next_ids [T'] (the id each position must predict), seg_positions)."""
    ids, target = conversation_ids(tok, sample)
    ids_t = torch.tensor(ids)
    prompt_ids = {tok.token_id(REGION), tok.token_id(MARK)}
    embeds = side.llm.model.tok_embeddings(torch.where((ids_t < 0) | (ids_t >= tok.vocab_rows), 0, ids_t))
    prompt_pos = [k for k, i in enumerate(ids) if i in prompt_ids]
    if prompt_pos:  # k-th prompt token <- k-th prompt, in order of appearance
        qs = torch.stack([rec["prompt_q"][p.obj, KIND_ORDER.index(p.kind)] for p in sample.prompts])
        embeds = embeds.index_put((torch.tensor(prompt_pos),), side.projector["model"].embed_queries(qs))
    img = ids.index(IMAGE_ID)
    block = image_block(side, rec)
    inputs = torch.cat([embeds[:img], block, embeds[img + 1:]])
    shift = len(block) - 1
    ids_full = ids[:img] + [IMAGE_ID] * len(block) + ids[img + 1:]
    target_full = target[:img] + [False] * len(block) + target[img + 1:]
    seg_id = tok.token_id(SEG)
    seg_positions = [k + shift for k, i in enumerate(ids) if i == seg_id and k > img]
    return inputs, torch.tensor(target_full), torch.tensor(ids_full), seg_positions


def batch_loss(side, segmenter, tok, cache, cfg, rng, batch):
    items = []
    for _ in range(batch):
        index = int(rng.integers(len(cache)))
        scene, rec = stage2_scene(index, cfg), cache[index]
        sample = random_sample(scene, rng, TASK_WEIGHTS)
        items.append((scene, rec, sample) + embed_sample(side, tok, sample, rec))
    T = max(len(it[3]) for it in items)
    D = cfg.llm.hidden_size
    inputs = torch.zeros(batch, T, D)
    mask = torch.zeros(batch, T, dtype=torch.int64)
    labels = torch.full((batch, T), -100, dtype=torch.int64)
    for b, (_, _, _, x, target, ids, _) in enumerate(items):
        n = len(x)
        inputs[b, :n], mask[b, :n] = x, 1
        # position t predicts id t+1 where that id is an answer token
        labels[b, :n - 1] = torch.where(target[1:], ids[1:], -100)
    positions = torch.arange(T)[None].expand(batch, T)
    logits, hidden, _ = side.llm(inputs, positions, mask)
    lm = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-100)

    seg_terms, mse_terms = [], []
    for b, (scene, rec, sample, _, _, _, seg_positions) in enumerate(items):
        if not seg_positions:
            continue
        q = side.projector_text2vision(hidden[b, seg_positions])                      # [N,2C]
        C = cfg.decoder_dim
        mems = [rec["mem0"].float(), rec["mem1"].float(), rec["mem2"].float()]
        stages = segmenter.decode_seg(q[:, :C], q[:, C:], rec["mask_features"].float(), mems, all_predictions=True)
        targets = target_masks(scene.masks[sample.seg_objects], cfg.mask_size)
        seg_terms.append(sum(mask_loss(m[:, 0], targets) for m in stages) / len(stages))
        best = rec["best_query"][sample.seg_objects]
        query = torch.cat([rec["query_feat"][0, best], rec["query_pos"][0, best]], -1)
        mse_terms.append(F.mse_loss(q, query))
    seg = torch.stack(seg_terms).mean() if seg_terms else torch.zeros(())
    mse = torch.stack(mse_terms).mean() if mse_terms else torch.zeros(())
    return lm, seg, mse


def train(cfg, tok, run, steps, batch=8, lr=1e-3, warmup=50, save_every=50, resume=False):
    """Train (or resume) the LLM side over the segmenter of run/stage1.pt and the cache of train.precompute."""
    log = Log(os.path.join(run, "stage2.log"))
    ckpt_path = os.path.join(run, "stage2.pt")
    segmenter = load_segmenter(run, cfg)
    for p in segmenter.parameters():
        p.requires_grad_(False)
    cache = load(os.path.join(run, "stage2_cache.pt"))["records"]
    torch.manual_seed(0)
    side = LlmSide(cfg)
    opt = torch.optim.AdamW(side.parameters(), lr=lr, weight_decay=0.01)
    step = 0
    state = load(ckpt_path) if resume else None
    if state is not None:
        side.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        step = state["step"]
        log(f"resumed at step {step}")
    log(f"stage2 scenes={len(cache)} steps={steps} batch={batch} lr={lr} vocab_rows={cfg.llm.vocab_rows}")

    t0, sums = time.time(), np.zeros(3)
    while step < steps:
        rng = np.random.default_rng(10_000_000 + step)
        for group in opt.param_groups:
            group["lr"] = cosine_lr(step, steps, lr, warmup)
        lm, seg, mse = batch_loss(side, segmenter, tok, cache, cfg, rng, batch)
        opt.zero_grad()
        (lm + SEG_WEIGHT * seg + QUERY_MSE_WEIGHT * mse).backward()
        torch.nn.utils.clip_grad_norm_(side.parameters(), 1.0)
        opt.step()
        step += 1
        sums += [lm.item(), seg.item(), mse.item()]
        if step % 10 == 0:
            log(f"step {step} lm {sums[0] / 10:.3f} seg {sums[1] / 10:.3f} mse {sums[2] / 10:.3f} "
                f"lr {opt.param_groups[0]['lr']:.2e} {(time.time() - t0) / 10:.2f}s/step")
            t0, sums = time.time(), np.zeros(3)
        if step % save_every == 0 or step == steps:
            save(ckpt_path, model=side.state_dict(), optimizer=opt.state_dict(), step=step, config=cfg.name)
    log("stage2 done")
    return side


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", default="runs/nano")
    ap.add_argument("--config", default="nano")
    ap.add_argument("--steps", type=int, default=6500)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--save-every", type=int, default=50)
    ap.add_argument("--resume", action="store_true")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)  # see train.stage1
    _, tok = load_tokenizer()
    train(nano_config(tok, args.config), tok, args.run, args.steps, args.batch, args.lr, args.warmup,
          args.save_every, args.resume)


if __name__ == "__main__":
    main()
