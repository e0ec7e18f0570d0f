"""Join the two stages into one OmgLlava state dict, the file `export.bundle --weights` takes.

    python3 -m train.assemble --run runs/nano   # writes runs/nano/omg-llava-nano.pt (or --out)
"""
import argparse
import os

import torch

from omg_llava.config import get_config
from omg_llava.segmenter import OmgSeg
from train.runs import load


def assemble(run, cfg):
    stage1, stage2 = load(os.path.join(run, "stage1.pt")), load(os.path.join(run, "stage2.pt"))
    # cls_embed is a non-persistent buffer rebuilt from a fixed seed; the export must see the vectors we trained with
    # (up to rounding: torch versions and devices normalise them a few ulps apart).
    default = OmgSeg(cfg).panoptic_head.cls_embed
    if not torch.allclose(default, stage1["cls_embed"].cpu(), atol=1e-6):
        raise ValueError("stage 1 trained with class embeddings other than the head's seeded default")
    state = {f"visual_encoder.{k}": v for k, v in stage1["model"].items()}
    state.update(stage2["model"])
    return state


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", default="runs/nano")
    ap.add_argument("--config", default="nano")
    ap.add_argument("--out", help="default: RUN/omg-llava-nano.pt")
    args = ap.parse_args()
    out = args.out or os.path.join(args.run, "omg-llava-nano.pt")
    torch.save(assemble(args.run, get_config(args.config)), out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
