"""The tiny-random fixture: a bundle with steered random weights, and golden outputs of the Python reference.

    python3 -m export.golden --out ../../test/fixtures/tiny-random      (from tools/model)

Writes the bundle (export.bundle), golden-image.png, golden-mask.png, golden.json (plan "golden.json") and
tokenizer-samples.json. The TypeScript parity test runs the same case through onnxruntime and compares.

Random weights almost never emit [SEG] or stop. So the output head is steered (see STEER_NOTE): a few
token embeddings are scaled up so they dominate the residual stream, and the output row of each answer
token is set to the direction of the previous token's embedding. Greedy decoding then follows the chain
"\\n" -> ANSWER, whatever the image and prompts are, with wide argmax margins.
"""
import argparse
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

from export.bundle import DEFAULT_SP_MODEL, TEMPLATE, build_model, load_tokenizer, write_bundle
from export.tensors import to_json
from export.tokenizer_samples import samples
from omg_llava.pipeline import IMAGE_ID, Conversation
from omg_llava.prior import prior_grid

SEED = 10                    # picked so that every margin below holds (checked when writing)
ANSWER = ["<p>", "\u2581Red", "\u2581circle", "</p>", "[SEG]", "\u2581.", "<|im_end|>"]  # pieces
BOOST, ALPHA = 4.0, 2.0      # embedding scale of chain tokens; norm of the steered output rows
MAX_NEW_TOKENS = 16
MIN_MARGIN = 1e-2            # greedy top-1 minus top-2, far above ORT vs PyTorch float noise
MIN_MASK_LOGIT = 1e-3        # |upsampled mask logit| at every output pixel, so thresholds cannot flip
MIN_PRIOR_MARGIN = 1e-3      # best minus second prior score per cell, so object_valid cannot flip
STEER_NOTE = ("Random weights (seed {seed}) with a steered output head, for parity tests only: the embeddings of "
              "the tokens of the chain \\n -> {chain} are scaled by {boost} and the output row of each chain token "
              "is {alpha} x the unit direction of its predecessor's embedding, so greedy decoding answers with that "
              "chain (one [SEG] before the end, then <|im_end|>).")
TURNS = [
    ("There are some marks: Mark 1 <mark>.\nCan you provide me with a detailed description of the region in the "
     "picture marked by region1 <region>?",
     [{"kind": "point", "x": 10, "y": 12}, {"kind": "box", "x1": 20, "y1": 5, "x2": 40, "y2": 25}]),
    ("Please segment the region2 <region>.", [{"kind": "mask", "mask": "golden-mask.png"}]),
]


def golden_image():
    """A 45x30 RGB image (wider than tall, odd padding) and a 45x30 binary mask, both deterministic."""
    img = Image.new("RGB", (45, 30))
    x, y = np.meshgrid(np.arange(45), np.arange(30))
    img.putdata(list(map(tuple, np.stack([x * 5, y * 8, 255 - x * 3], -1).reshape(-1, 3).astype(np.uint8).tolist())))
    draw = ImageDraw.Draw(img)
    draw.ellipse((4, 6, 18, 20), fill=(220, 30, 30))
    draw.rectangle((24, 8, 38, 22), fill=(30, 60, 210))
    mask = Image.new("L", (45, 30), 0)
    ImageDraw.Draw(mask).ellipse((3, 5, 19, 21), fill=255)
    return img, mask


def steer(model, tokenizer):
    """Make greedy decoding follow "\\n" -> ANSWER (see module docstring)."""
    chain = [tokenizer.token_id("\n")] + [tokenizer.token_id(p) for p in ANSWER]
    emb, out = model.llm.model.tok_embeddings.weight, model.llm.output.weight
    with torch.no_grad():
        for prev, nxt in zip(chain, chain[1:]):
            emb[prev] *= BOOST
            out[nxt] = ALPHA * emb[prev] / emb[prev].norm()


def turn_tensors(prefix, turn) -> dict:
    t = {"ids": torch.tensor(turn.ids), "inputs_embeds": turn.inputs_embeds, "prompt_logits": turn.prompt_logits,
         "generated": torch.tensor(turn.generated), "seg_hidden": turn.seg_hidden, "seg_mask_logits": turn.mask_logits,
         "masks": turn.masks, "prompt_embeds": turn.prompt_embeds}
    t |= {f"prompt_{k}": v for k, v in turn.prompt_inputs.items()}
    t["prompt_regions"] = turn.prompt_inputs["regions"].to(torch.uint8)
    return {f"{prefix}.{k}": v for k, v in t.items()}


def check_prior(conv):
    """Fail loudly if a prior cell's owner is a near-tie (object_valid could differ in onnxruntime)."""
    grid = prior_grid(conv.vision["class_logits"], conv.vision["mask_logits"], conv.model.cfg.prior_grid)
    top2 = grid.topk(2, dim=0).values
    if (top2[0] - top2[1]).min() < MIN_PRIOR_MARGIN:
        raise AssertionError(f"prior owner margin {(top2[0] - top2[1]).min():.2e} < {MIN_PRIOR_MARGIN}")


def check_turn(turn, stop_id, geometry):
    """Fail loudly if the fixture would be fragile: a greedy near-tie, no usable [SEG], no stop, or a mask
    logit so close to 0 that float noise could flip the pixel."""
    if min(turn.margins) < MIN_MARGIN:
        raise AssertionError(f"greedy margin {min(turn.margins):.2e} < {MIN_MARGIN}")
    if turn.generated[-1] != stop_id or len(turn.seg_hidden) == 0:
        raise AssertionError(f"answer {turn.generated} must contain a fed [SEG] and end with the stop id")
    g = geometry
    up = F.interpolate(turn.mask_logits, size=(g.side, g.side), mode="bilinear", align_corners=False)
    crop = up[:, 0, g.pad_top:g.pad_top + g.height, g.pad_left:g.pad_left + g.width]
    if crop.abs().min() < MIN_MASK_LOGIT:
        raise AssertionError(f"a mask logit is {crop.abs().min():.2e} from the threshold (< {MIN_MASK_LOGIT})")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True)
    parser.add_argument("--tokenizer", default=str(DEFAULT_SP_MODEL))
    args = parser.parse_args()
    out = Path(args.out)
    tokenizer_json, tokenizer = load_tokenizer(args.tokenizer)
    model = build_model("tiny-random", tokenizer.vocab_rows, seed=SEED)
    steer(model, tokenizer)
    note = STEER_NOTE.format(seed=SEED, chain=" -> ".join(ANSWER), boost=BOOST, alpha=ALPHA)
    manifest = write_bundle(model, tokenizer_json, out, name="tiny-random", description=note,
                            source=[f"random weights, seed {SEED}, steered output head (export/golden.py)"],
                            quality={"note": "random weights: no quality; used only for parity tests"},
                            generation={"max_new_tokens": MAX_NEW_TOKENS, "do_sample": False, "temperature": 0.1,
                                        "top_k": 40, "top_p": 0.75})

    image, mask = golden_image()
    image.save(out / "golden-image.png")
    mask.save(out / "golden-mask.png")
    conv = Conversation(model, tokenizer, TEMPLATE, Image.open(out / "golden-image.png"))
    check_prior(conv)
    tensors = {"pixel_values": conv.pixel_values} | dict(conv.vision)
    tensors |= dict(zip(("pixel_tokens", "separator", "object_tokens", "object_valid"), conv.prior))
    tensors["image_block"] = conv.image_block
    case_turns = []
    for k, (question, prompts) in enumerate(TURNS, start=1):
        resolved = [p | {"mask": np.asarray(Image.open(out / p["mask"])) > 127} if p["kind"] == "mask" else p for p in prompts]
        turn = conv.ask(question, resolved, max_new_tokens=MAX_NEW_TOKENS)
        check_turn(turn, tokenizer.token_id(TEMPLATE["stop"][0]), conv.geometry)
        tensors |= turn_tensors(f"turn{k}", turn)
        case_turns.append({"question": question, "prompts": prompts, "answer": turn.text,
                           "min_greedy_margin": min(turn.margins)})

    golden = {
        "tensors": {name: to_json(t) for name, t in tensors.items()},
        "case": {
            "bundle": ".", "image": "golden-image.png", "width": image.width, "height": image.height,
            "max_new_tokens": MAX_NEW_TOKENS, "image_id": IMAGE_ID, "turns": case_turns,
            "notes": ("turnK.ids are the ids fed in turn K (turn 1: BOS + chunk 0, image_id for the image block, "
                      "chunk 1; turn 2: the unfed stop id of turn 1, then separator + user template, no BOS); "
                      "the KV cache of turn 1 is reused. prompt_* are the prompt graph inputs in S_in space; "
                      "masks are uint8 0/1 at the original size. " + manifest["description"]),
        },
    }
    (out / "golden.json").write_text(json.dumps(golden, indent=1) + "\n", encoding="utf-8")
    sp_model = Path(args.tokenizer).read_bytes()
    (out / "tokenizer-samples.json").write_text(
        json.dumps({"tokenizer": "tokenizer.json", "samples": samples(tokenizer_json, sp_model)}, indent=1,
                   ensure_ascii=False) + "\n", encoding="utf-8")
    for k, c in enumerate(case_turns, start=1):
        print(f"turn {k}: {c['answer']!r} (min greedy margin {c['min_greedy_margin']:.3f})")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
