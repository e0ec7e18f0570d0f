"""Stage 2: train projector, text2vision and the LLM on every scene task, the segmenter frozen.

Inputs are the cached segmenter outputs (train.precompute). Per batch of conversations:
  - the image block (perception prior + projector) and prompt embeddings are spliced into the text embeddings;
  - LM cross-entropy on answer tokens only;
  - every [SEG]: text2vision(hidden state where [SEG] is the input) -> frozen decode_seg -> BCE + dice against
    the object's mask on every stage, plus an MSE to the object's best panoptic [query_feat, query_pos]
    (as upstream's pretrain regressed object queries), which gives the mask loss a good start.

With --seg-decoder, [SEG] decodes through its own copy of the decoder (as upstream's task checkpoints, spec §9.3),
initialised from the frozen one and trained with the LLM side; the image pass and prompts keep the frozen decoder.

    python3 -m train.stage2 --run runs/nano --steps 6500 [--resume] [--seg-decoder] [--device cuda --batch 48 --workers 14 --minutes 2.2]
"""
import argparse
import os
import time
from dataclasses import replace

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from export.bundle import load_tokenizer
from omg_llava.config import get_config
from omg_llava.decoder import TransformerDecoder, mlp
from omg_llava.llm import InternLM2
from omg_llava.model import has_llm_decoder
from omg_llava.prior import Projector, TextToVision, perception_prior, prior_grid
from omg_llava.tokenizer import MARK, REGION, SEG
from scenes.texts import random_sample
from train.cache import load_cache
from train.data import ENDLESS, KINDS, target_masks
from train.losses import mask_loss
from train.precompute import load_segmenter, stage2_scene
from train.runs import Log, StepBudget, add_run_options, cosine_lr, load, save
from train.sequences import IMAGE_ID, conversation_ids

# Questions that must bind an attribute to the right object token (count, colour, shape, GCG) are the slowest to learn;
# counts of two or more slowest of all, hence the heavy balanced_count.
TASK_WEIGHTS = {"refer": 0.15, "gcg": 0.15, "region": 0.1, "count": 0.15, "balanced_count": 0.8, "colour": 0.1,
                "shape": 0.1, "caption": 0.08, "relation": 0.05, "multi": 0.12}
# Tasks whose answer says how many shapes there are or names them all. They are trained only on scenes whose valid
# object tokens are exactly the scene's shapes: where the frozen segmenter missed or merged one, the true answer
# contradicts the tokens. Trained on those too, the LLM side miscounted 6 of the 92 held-out scenes (of seeds 0..119)
# whose tokens were right; trained this way, 3. Their lists name the shapes in the order of the tokens (see
# token_orders).
ENUMERATING = ("count", "balanced_count", "caption", "gcg", "multi")
SEG_WEIGHT, QUERY_MSE_WEIGHT = 1.0, 1.0
FIRST_BATCH_SEED = 10_000_000


class LlmSide(nn.Module):
    """The trainable part, under OmgLlava's attribute names (so its state dict keys are OmgLlava's)."""

    def __init__(self, cfg, seg_decoder=False):
        super().__init__()
        self.projector = nn.ModuleDict({"model": Projector(cfg)})
        self.projector_text2vision = TextToVision(cfg)
        self.llm = InternLM2(cfg.llm)
        if seg_decoder:
            C = cfg.decoder_dim
            self.visual_encoder = nn.ModuleDict({"panoptic_head": nn.ModuleDict(
                {"transformer_decoder_llm": TransformerDecoder(cfg), "mask_embed_llm": mlp(C, C, C)})})

    def attach_seg_decoder(self, segmenter, copy_weights):
        """Make the segmenter decode [SEG] through this side's decoder copy, first copying the frozen decoder into
        it when `copy_weights`."""
        ours, head = self.visual_encoder["panoptic_head"], segmenter.panoptic_head
        if copy_weights:
            ours["transformer_decoder_llm"].load_state_dict(head.transformer_decoder.state_dict())
            ours["mask_embed_llm"].load_state_dict(head.mask_embed.state_dict())
        head.transformer_decoder_llm, head.mask_embed_llm = ours["transformer_decoder_llm"], ours["mask_embed_llm"]


def nano_config(tok, name="nano"):
    cfg = get_config(name)
    return replace(cfg, llm=replace(cfg.llm, vocab_rows=tok.vocab_rows))


class Conversations(Dataset):
    """Item `step`: `batch` conversations on random cached scenes, as token ids with their answer targets, the
    prompts (object, kind) and the target mask of every [SEG] (the text side, built in DataLoader workers).
    Scenes whose tokens do not show every shape (`orders` None) get no ENUMERATING task; the others list their
    shapes in the order of their tokens."""

    def __init__(self, cfg, tok, orders, batch, first_step):
        self.cfg, self.tok, self.orders, self.batch, self.first_step = cfg, tok, orders, batch, first_step
        self.partial_weights = {k: w for k, w in TASK_WEIGHTS.items() if k not in ENUMERATING}

    def __len__(self):
        return ENDLESS

    def __getitem__(self, i):
        rng = np.random.default_rng(FIRST_BATCH_SEED + self.first_step + i)
        items = []
        for _ in range(self.batch):
            index = int(rng.integers(len(self.orders)))
            order = self.orders[index]
            scene = replace(stage2_scene(index, self.cfg), order=order)
            sample = random_sample(scene, rng, TASK_WEIGHTS if order is not None else self.partial_weights)
            ids, target = conversation_ids(self.tok, sample)
            items.append(dict(scene=index, ids=ids, target=target, seg_objects=sample.seg_objects,
                              prompts=[(p.obj, KINDS.index(p.kind)) for p in sample.prompts],
                              seg_masks=target_masks(scene.masks[sample.seg_objects], self.cfg.mask_size)))
        return items


def token_orders(cfg, cache):
    """[scenes] cached scene s's objects in the order of their valid object tokens, or None where those tokens are not
    exactly its shapes: each object's best query valid and of its class, and no other query valid.

    The LLM sees the object tokens in ascending query order (perception_prior), so a list in that order is a walk
    along them. Listed left to right instead, the LLM side had to sort the tokens by position as it went, and named
    a shape twice or skipped one in 5 of the 34 of the first 40 held-out scenes whose tokens were exact."""
    out = []
    for s in range(len(cache["class_logits"])):
        class_logits, mask_logits = cache["class_logits"][s:s + 1], cache["mask_logits"][s:s + 1].float()
        valid = prior_grid(class_logits, mask_logits, cache["clip_feature"].shape[-1] // 2).argmax(0).unique()
        objects = stage2_scene(s, cfg).objects
        best = cache["best_query"][s, :len(objects)].tolist()
        classes = class_logits[0, best, :-1].argmax(-1).tolist()
        exact = sorted(best) == valid.tolist() and [cfg.class_names[c] for c in classes] == [o.name for o in objects]
        out.append(sorted(range(len(objects)), key=best.__getitem__) if exact else None)
    return out


def image_block(side, cache, s):
    """The LLM-space visual tokens of cached scene s: [P + 1 + n_valid, D]."""
    one = {k: cache[k][s:s + 1] for k in ("clip_feature", "query_feat", "query_pos", "class_logits", "mask_logits")}
    pixel, sep, objects, valid = perception_prior(one["clip_feature"], one["query_feat"], one["query_pos"],
                                                  one["class_logits"], one["mask_logits"].float(), side.projector["model"])
    return torch.cat([pixel, sep, objects[valid]])


def embed_item(side, tok, item, cache):
    """-> (inputs [T',D], target [T'] bool, next_ids [T'] (the id each position must predict), seg_positions)."""
    ids, target, device = item["ids"], item["target"], cache["query_feat"].device
    ids_t = torch.tensor(ids, device=device)
    embeds = side.llm.model.tok_embeddings(torch.where((ids_t < 0) | (ids_t >= tok.vocab_rows), 0, ids_t))
    prompt_ids = {tok.token_id(REGION), tok.token_id(MARK)}
    prompt_pos = [k for k, i in enumerate(ids) if i in prompt_ids]
    if prompt_pos:  # k-th prompt token <- k-th prompt, in order of appearance
        objs, kinds = zip(*item["prompts"])
        qs = cache["prompt_q"][item["scene"], list(objs), list(kinds)]
        embeds = embeds.index_put((torch.tensor(prompt_pos, device=device),), side.projector["model"].embed_queries(qs))
    img = ids.index(IMAGE_ID)
    block = image_block(side, cache, item["scene"])
    inputs = torch.cat([embeds[:img], block, embeds[img + 1:]])
    shift = len(block) - 1
    ids_full = ids[:img] + [IMAGE_ID] * len(block) + ids[img + 1:]
    target_full = target[:img] + [False] * len(block) + target[img + 1:]
    seg_id = tok.token_id(SEG)
    seg_positions = [k + shift for k, i in enumerate(ids) if i == seg_id and k > img]
    return inputs, torch.tensor(target_full, device=device), torch.tensor(ids_full, device=device), seg_positions


def batch_loss(side, segmenter, tok, cache, cfg, items):
    device = cache["query_feat"].device
    embedded = [embed_item(side, tok, item, cache) for item in items]
    B, T, D = len(items), max(len(e[0]) for e in embedded), cfg.llm.hidden_size
    inputs = torch.zeros(B, T, D, device=device)
    mask = torch.zeros(B, T, dtype=torch.int64, device=device)
    labels = torch.full((B, T), -100, dtype=torch.int64, device=device)
    for b, (x, target, ids, _) in enumerate(embedded):
        n = len(x)
        inputs[b, :n], mask[b, :n] = x, 1
        # position t predicts id t+1 where that id is an answer token
        labels[b, :n - 1] = torch.where(target[1:], ids[1:], -100)
    positions = torch.arange(T, device=device)[None].expand(B, T)
    logits, hidden, _ = side.llm(inputs, positions, mask)
    lm = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-100)

    # every [SEG] of the batch decodes at once, each over its own scene's features
    rows = [(b, pos) for b, e in enumerate(embedded) for pos in e[3]]
    if not rows:
        return lm, torch.zeros((), device=device), torch.zeros((), device=device)
    b_idx, positions = (torch.tensor(x, device=device) for x in zip(*rows))
    s = torch.tensor([items[b]["scene"] for b, _ in rows], device=device)
    objs = torch.tensor([o for item in items for o in item["seg_objects"]], device=device)
    q = side.projector_text2vision(hidden[b_idx, positions])                         # [N,2C]
    C = cfg.decoder_dim
    mems = [cache[k][s].float() for k in ("mem0", "mem1", "mem2")]
    stages = segmenter.decode_seg(q[:, :C], q[:, C:], cache["mask_features"][s].float(), mems, all_predictions=True)
    targets = torch.cat([item["seg_masks"] for item in items]).to(device)
    seg = sum(mask_loss(m[:, 0], targets) for m in stages) / len(stages)
    best = cache["best_query"][s, objs]
    query = torch.cat([cache["query_feat"][s, best], cache["query_pos"][s, best]], -1)
    return lm, seg, F.mse_loss(q, query)


def train(cfg, tok, run, steps, batch=8, lr=1e-3, warmup=50, save_every=50, resume=False, device="cpu", workers=0,
          minutes=None, seg_decoder=False):
    """Train (or resume) the LLM side over the segmenter of run/stage1.pt and the cache of train.precompute."""
    log = Log(os.path.join(run, "stage2.log"))
    ckpt_path = os.path.join(run, "stage2.pt")
    segmenter = load_segmenter(run, cfg).to(device)
    for p in segmenter.parameters():
        p.requires_grad_(False)
    cache = {k: v.to(device) for k, v in load_cache(run).items()}
    orders = token_orders(cfg, cache)
    torch.manual_seed(0)
    state = load(ckpt_path) if resume else None
    had_decoder = state is not None and has_llm_decoder(state["model"])
    side = LlmSide(cfg, seg_decoder or had_decoder).to(device)
    opt = torch.optim.AdamW(side.parameters(), lr=lr, weight_decay=0.01)
    step = 0
    if state is not None:
        missing = side.load_state_dict(state["model"], strict=had_decoder or not seg_decoder).missing_keys
        assert all(k.startswith("visual_encoder.") for k in missing), missing
        if not missing:  # a new decoder copy means new parameters: the optimizer starts afresh
            opt.load_state_dict(state["optimizer"])
        step = state["step"]
        log(f"resumed at step {step}")
    if seg_decoder or had_decoder:
        side.attach_seg_decoder(segmenter, copy_weights=not had_decoder)
        log(f"[SEG] decoder copy {'resumed' if had_decoder else 'initialised from the frozen decoder'}")
    log(f"stage2 scenes={len(orders)} ({sum(o is not None for o in orders)} whose tokens show every shape) "
        f"steps={steps if minutes is None else f'{minutes} min'} batch={batch} lr={lr} "
        f"vocab_rows={cfg.llm.vocab_rows} device={device}")

    loader = DataLoader(Conversations(cfg, tok, orders, batch, step), batch_size=None, num_workers=workers)
    budget = StepBudget(steps, minutes, step, log)
    steps, t0, sums = budget.steps, time.time(), torch.zeros(3, device=device)
    for items in loader:
        if step >= steps:
            break
        for group in opt.param_groups:
            group["lr"] = cosine_lr(step, steps, lr, warmup)
        lm, seg, mse = batch_loss(side, segmenter, tok, cache, cfg, items)
        opt.zero_grad()
        (lm + SEG_WEIGHT * seg + QUERY_MSE_WEIGHT * mse).backward()
        torch.nn.utils.clip_grad_norm_(side.parameters(), 1.0)
        opt.step()
        step += 1
        sums += torch.stack([lm.detach(), seg.detach(), mse.detach()])
        steps = budget.after(step)
        if step % 10 == 0:
            lm_avg, seg_avg, mse_avg = (sums / 10).tolist()
            log(f"step {step} lm {lm_avg:.3f} seg {seg_avg:.3f} mse {mse_avg:.3f} "
                f"lr {opt.param_groups[0]['lr']:.2e} {(time.time() - t0) / 10:.2f}s/step")
            t0, sums = time.time(), torch.zeros(3, device=device)
        if step % save_every == 0 or step == steps:
            save(ckpt_path, model=side.state_dict(), optimizer=opt.state_dict(), step=step,
                 config=cfg.name)
    log("stage2 done")
    return side


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", default="runs/nano")
    ap.add_argument("--config", default="nano")
    ap.add_argument("--seg-decoder", action="store_true", help="train a [SEG] decoder copy (kept once a run has one)")
    add_run_options(ap, steps=6500, batch=8, lr=1e-3, save_every=50)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    _, tok = load_tokenizer()
    train(nano_config(tok, args.config), tok, args.run, args.steps, args.batch, args.lr, args.warmup,
          args.save_every, args.resume, args.device, args.workers, args.minutes, args.seg_decoder)


if __name__ == "__main__":
    main()
