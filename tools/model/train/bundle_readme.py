"""Write the nano bundle's README (what it is, how it was trained, measured quality) and refresh its manifest entry.

    python3 -m train.bundle_readme --bundle ../../models/omg-llava-nano --notes runs/nano/notes.md
"""
import argparse
import hashlib
import json
import re
from pathlib import Path

README = """# omg-llava-nano

A tiny OMG-LLaVA trained from scratch on synthetic scenes: 1-4 flat-coloured shapes (circle, square, triangle,
star in red, green, blue, yellow, purple, orange) on a light background. It exists so the whole service runs
(and its tests mean something) without the 7B checkpoints. It knows nothing outside that scene world.
Same bundle format and graphs as the real model (six ONNX graphs, `tokenizer.json`, `manifest.json`).

## Sizes

| | |
| --- | --- |
| input side `S_in` / mask side `M` | {image_size} / {mask_size} |
| queries / decoder width | {num_queries} / {decoder_dim} |
| classes | {num_classes} ("red circle" ... "orange star") + background |
| LLM | InternLM2-style, hidden {hidden_size}, {num_layers} layers, {vocab_rows} embedding rows |
| files | {total_mb:.1f} MB |

## What to ask (upstream OMG-LLaVA wording)

| task | question | answer |
| --- | --- | --- |
| referring segmentation | `Please segment the red circle in this image.` | `<p> Red circle </p> [SEG].` |
| grounded caption (GCG) | the six upstream GCG questions, e.g. `Could you please give me a detailed description of the image? Please respond with interleaved segmentation masks for the corresponding parts of the answer.` | `There are two shapes: a <p> red circle </p> [SEG] and a <p> blue star </p> [SEG].` (left to right) |
| caption | `Could you please give me a detailed description of the image?` | `There are two shapes: a red circle and a blue star.` |
| count | `How many shapes are there in this image?`, `How many circles are there?`, `How many red shapes are there?` | `There are two shapes.` / `There is one circle.` / `There are no red shapes.` |
| colour / shape | `What color is the circle?` / `What shape is the red object?` | `The circle is red.` / `The red object is a circle.` |
| relation | `Is the red circle to the left of the blue star?` (also right of, above, below) | `Yes, the red circle is to the left of the blue star.` / `No, ...` |
| region caption | `Can you provide me with a detailed description of the region in the picture marked by region1 <region>?` (box or mask prompt; `<mark>` for a point) | `Region1 is a red circle.` |
| region follow-up | `Please segment the region1.` | `<p> Region1 </p> [SEG].` |
| segment everything | (no text: the panoptic class and mask logits of `vision.onnx`) | |

When two shapes share colour and shape, refer to one with a position word: `the left red circle`, `the top red circle`.
Count, colour and shape questions also work in other wordings (`scenes/texts.py`, `REWORDINGS`): `How many shapes are
there?`, `Count the red shapes.`, `What is the colour of the star?`, `What shape is the red one?`. Other tasks know
only the wordings above.

## Training recipe

Run from `tools/model`; everything is seeded. The stages:

- Stage 1, `train.stage1`: the segmenter from scratch on scenes rendered with sides from S_in to 2 S_in and
  preprocessed exactly like inference. Hungarian matching (class + BCE + dice cost) on every decoder stage, class
  cross-entropy (weight 4, background weight 0.1) against fixed random unit class embeddings (the head's seeded
  `cls_embed`, cosine x 30), mask BCE + dice at the mask size; three random point/box/mask prompts per scene whose decoded
  mask must match the prompted object (BCE + dice on every stage) and whose class head output must name it; a
  training-only linear probe on mask-pooled features (weight 5). ConvNeXt layer scales start at 0.3, not 1e-6.
- Stage 1b, `train.classes`: the class head alone, everything else frozen.
- Stage 1c, `train.ownership`: the decoder, heads and prompt path (with `--whole`, to adapt to a new input size, the
  backbone and pixel decoder too) keep stage 1's losses plus an ownership loss: the perception prior gives a query an
  object token only if it tops one of the {prior_grid} x {prior_grid} prior cells, so per cell the matched query of
  the object covering most of it (every object gets one cell, empty cells any matched query) should have the largest
  prior value (cross-entropy over log prior values, weight 2).
- `train.precompute`: the frozen segmenter's outputs for the stage-2 scenes, computed once.
- Stage 2, `train.stage2`: projectors, `[SEG]` projector and LLM over the cached scenes: the upstream chat template
  (BOS, `<image>\\n` first), LM loss on answer tokens only, every task above and multi-turn conversations; every
  `[SEG]` is decoded (BCE + dice against the object's mask) and its query regressed (MSE) onto the object's
  panoptic query, as upstream's pretraining did. With `--seg-decoder` (the committed bundle), `[SEG]` decodes
  through its own copy of the decoder, initialised from the frozen one and trained here, as upstream's task
  checkpoints do; without it, through the frozen decoder.

On one CUDA GPU, `bash train/gpu.sh runs/nano` runs them all (batches of 48 scenes, stage 1 held to 3.5 minutes and
stage 2 to 2.2, about 10 minutes in all on an H200) and assembles `runs/nano/omg-llava-nano.pt`. On a CPU the same
modules run without `--device cuda` (for example `--batch 8 --minutes 30` for stage 1, `--batch 8 --minutes 20` for stage 1c and `--batch 16 --minutes 25`
for stage 2, `--scenes 600` to precompute). Thirty minutes of stage 1 on two cores covers about 8,500 scenes
(1.7 s a step of 8 on the development machine), a seventh of the GPU run's; the previous bundle's stage 1 saw about
3,400 and could not tell shapes apart. Then:

```
python3 -m train.evaluate --weights runs/nano/omg-llava-nano.pt --scenes {eval_scenes} --out runs/nano/quality.json
python3 -m export.bundle --config nano --weights runs/nano/omg-llava-nano.pt --out ../../models/omg-llava-nano \\
    --name omg-llava-nano --quality runs/nano/quality.json --source "synthetic scenes (tools/model/scenes), train/ recipe"
python3 -m train.bundle_readme --bundle ../../models/omg-llava-nano --notes runs/nano/notes.md
```

Each stage checkpoints as it goes and continues with `--resume`; logs are `runs/nano/stage1.log` and `stage2.log`.

{notes}

## Quality

Measured by `train.evaluate` through the Python reference pipeline on {eval_scenes} held-out scenes at real sizes
(sides 200-1200 px, never seen in training); the TypeScript pipeline computes the same model.

{quality_table}

{ts_quality}

Licence: Apache-2.0 (weights and tokenizer trained here from generated data).
"""

BARS = {"refer_seg_miou": ("referring segmentation mIoU", 0.85), "count_acc": ("count accuracy", 0.95),
        "count_many_acc": ("count accuracy where the answer is two or more", 0.95),
        "colour_shape_acc": ("colour / shape accuracy", 0.95), "gcg_all_named": ("GCG: every shape named once", None),
        "gcg_phrase_miou": ("GCG phrase-mask mIoU", 0.80), "region_caption_acc": ("region caption accuracy", 0.90),
        "region_colour_acc": ("region caption names the right colour", None),
        "everything_recall": ("segment-everything recall at IoU 0.5", 0.90),
        "reworded_acc": ("count / colour / shape accuracy in other wordings", None)}


def quality_table(quality):
    rows = ["| metric | value | bar | met |", "| --- | --- | --- | --- |"]
    for key, (label, bar) in BARS.items():
        value = quality.get(key)
        met = "" if bar is None or value is None else ("yes" if value >= bar else "no")
        rows.append(f"| {label} | {value} | {'' if bar is None else bar} | {met} |")
    return "\n".join(rows)


def ts_quality(ts):
    """The same model measured through the TypeScript service path (test/inference/nano.test.ts), when recorded."""
    if not ts:
        return ""
    rows = "\n".join(f"| {BARS[k][0]} | {v} | {'' if BARS[k][1] is None else BARS[k][1]} |" for k, v in ts.items() if k in BARS)
    return f"Through the TypeScript pipeline ({ts['note']}):\n\n| metric | value | bar |\n| --- | --- | --- |\n{rows}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bundle", required=True)
    ap.add_argument("--notes", help="markdown file about this particular run (history, known limitations)")
    args = ap.parse_args()
    bundle = Path(args.bundle)
    manifest = json.loads((bundle / "manifest.json").read_text())
    c = manifest["config"]
    quality = manifest["quality"]
    total = sum(e["bytes"] for f, e in manifest["files"].items() if f != "README.md")
    text = README.format(
        image_size=c["image_size"], mask_size=c["mask_size"], num_queries=c["num_queries"], decoder_dim=c["decoder_dim"],
        num_classes=c["num_classes"], prior_grid=c["prior_grid"], hidden_size=c["llm"]["hidden_size"],
        num_layers=c["llm"]["num_layers"], vocab_rows=c["llm"]["vocab_rows"], total_mb=total / 1e6,
        eval_scenes=re.search(r"(\d+) held-out", quality["note"]).group(1),
        quality_table=quality_table(quality), ts_quality=ts_quality(quality.get("typescript")), notes=Path(args.notes).read_text().strip() if args.notes else "")
    (bundle / "README.md").write_text(text, encoding="utf-8")
    data = (bundle / "README.md").read_bytes()
    manifest["files"]["README.md"] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    (bundle / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {bundle / 'README.md'} and refreshed its manifest entry")


if __name__ == "__main__":
    main()
