"""Seed a run from a committed bundle, so training goes on from its weights without its run folder (git ignores
runs/, and a fresh checkout has none).

    python3 -m train.from_bundle --bundle ../../models/omg-llava-nano --run runs/nano

Writes run/stage1.pt (the segmenter, its class embeddings) and run/stage2.pt (the LLM side with the [SEG] decoder
copy if the bundle has one, a fresh optimizer at step 0), read back from the bundle's ONNX initializers by export/weights.py, which proves them by re-exporting.
Then: train.ownership or train.precompute, and train.stage2 --resume.
"""
import argparse
import os
from pathlib import Path

import torch

from export.bundle import load_tokenizer
from export.weights import load_from_initializers
from train.runs import save
from train.stage2 import LlmSide, nano_config

SEGMENTER = "visual_encoder."
SEG_DECODER = ("visual_encoder.panoptic_head.transformer_decoder_llm.", "visual_encoder.panoptic_head.mask_embed_llm.")


def seed_run(bundle: Path, run: str, cfg) -> dict:
    """Writes run/stage1.pt and run/stage2.pt from the bundle; -> export/weights.py's report."""
    model, report = load_from_initializers(bundle, cfg)
    state = model.state_dict()
    frozen = {k: v for k, v in state.items() if k.startswith(SEGMENTER) and not k.startswith(SEG_DECODER)}
    os.makedirs(run, exist_ok=True)
    save(os.path.join(run, "stage1.pt"), config=cfg.name, model={k[len(SEGMENTER):]: v for k, v in frozen.items()},
         cls_embed=model.visual_encoder.panoptic_head.cls_embed.clone())
    side = LlmSide(cfg, seg_decoder=model.visual_encoder.has_llm_decoder)
    side.load_state_dict({k: v for k, v in state.items() if k not in frozen}, strict=True)
    save(os.path.join(run, "stage2.pt"), config=cfg.name, step=0, model=side.state_dict(),
         optimizer=torch.optim.AdamW(side.parameters()).state_dict())
    return report


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", default="../../models/omg-llava-nano")
    ap.add_argument("--run", default="runs/nano")
    ap.add_argument("--config", default="nano")
    args = ap.parse_args()
    report = seed_run(Path(args.bundle), args.run, nano_config(load_tokenizer()[1], args.config))
    print(f"wrote {args.run}/stage1.pt and stage2.pt ({report['tensors']} initializers, re-export max abs diff "
          f"{report['max_abs_diff_after_reexport']:.1e}); parameters no graph reads in full, whose unread parts "
          f"keep their initial values: {', '.join(report['parameters_not_in_any_graph']) or 'none'}")


if __name__ == "__main__":
    main()
