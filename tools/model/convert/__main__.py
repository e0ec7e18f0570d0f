"""Released OMG-LLaVA checkpoints -> a bundle (spec §11).

    python3 -m convert --internlm2 internlm2-chat-7b/ --omg-seg omg_seg_convl.pth \\
        --class-embeddings convnext_large_d_320_CocoPanopticOVDataset.pth \\
        --finetune omg_llava_7b_finetune_8gpus.pth [--open-clip open_clip_pytorch_model.bin] --out DIR
    (from tools/model)

The LLM sizes come from the InternLM2 config.json, the vocabulary rows from the finetune file's
tok_embeddings, everything else from `--config`. A task checkpoint (finetuned_refseg.pth, finetuned_gcg.pth)
brings its own [SEG] decoder copy, which seg.onnx then uses.
"""
import argparse
from dataclasses import replace
from pathlib import Path

import torch

from convert.coco_classes import COCO_PANOPTIC
from convert.keys import FINETUNE_PREFIX, convert_state, finetune_rule, internlm2_rule, omg_seg_rule, open_clip_rule
from convert.sources import load_hf_folder, load_torch
from export.bundle import write_bundle
from omg_llava.config import LlmConfig, get_config
from omg_llava.model import OmgLlava, has_llm_decoder
from omg_llava.tokenizer import Tokenizer, sentencepiece_to_hf

GiB = 2 ** 30


def llm_config(hf_config: dict, vocab_rows: int) -> LlmConfig:
    """Our LlmConfig from InternLM2's config.json."""
    heads = hf_config["num_attention_heads"]
    return LlmConfig(hidden_size=hf_config["hidden_size"], num_layers=hf_config["num_hidden_layers"],
                     num_heads=heads, num_kv_heads=hf_config.get("num_key_value_heads", heads),
                     head_dim=hf_config["hidden_size"] // heads, intermediate_size=hf_config["intermediate_size"],
                     vocab_rows=vocab_rows, rope_theta=float(hf_config.get("rope_theta", 1e6)),
                     rms_eps=hf_config.get("rms_norm_eps", 1e-5))


def class_names(path, rows: int, cfg):
    """Names for the embedding file's rows: --class-names, else COCO panoptic order for 133 rows, else the config's."""
    if path:
        names = tuple(line.strip() for line in Path(path).read_text().splitlines() if line.strip())
    else:
        names = COCO_PANOPTIC if rows == len(COCO_PANOPTIC) else cfg.class_names
    if len(names) != rows:
        raise SystemExit(f"{rows} class embeddings but {len(names)} class names; pass --class-names")
    return names


def load_model(args, log=print):
    """Read every source and build the filled model -> (model, tokenizer.json dict)."""
    sources_bytes = sum(p.stat().st_size for p in map(Path, (args.finetune, args.omg_seg)))
    sources_bytes += sum(p.stat().st_size for p in Path(args.internlm2).iterdir())
    # Before anything is read: half-precision files hold a parameter in 2 bytes, so 8 B/parameter + 2x the files
    # is about 6x the files (an overestimate where a file is fp32); refined below once the model is built.
    log(f"{sources_bytes / GiB:.1f} GiB of checkpoints: expect to need up to {6 * sources_bytes / GiB:.0f} GiB of RAM")
    log("reading the finetune checkpoint")
    finetune = load_torch(args.finetune)
    rows = finetune[FINETUNE_PREFIX + "model.tok_embeddings.weight"].shape[0]
    log("reading InternLM2")
    hf_config, base, sp_model = load_hf_folder(args.internlm2, log)
    log("reading OMG-Seg and the class embeddings")
    omg_seg = load_torch(args.omg_seg)
    cls_embed = next(iter(load_torch(args.class_embeddings).values()))  # [K-1, P, clip_dim]

    cfg = get_config(args.config)
    cfg = replace(cfg, llm=llm_config(hf_config, rows), class_names=class_names(args.class_names, cls_embed.shape[0], cfg))
    llm_decoder = has_llm_decoder(finetune)
    log(f"building {cfg.name} (task [SEG] decoder: {llm_decoder})")
    model = OmgLlava(cfg, llm_decoder=llm_decoder).eval()
    params = sum(p.numel() for p in model.parameters())
    log(f"  {params / 1e9:.2f} B parameters; needs about {(8 * params + 2 * sources_bytes) / GiB:.0f} GiB of RAM "
        f"(fp32 model, sources as fp32, one graph copy while exporting)")

    sources = {"omg_seg": (omg_seg_rule, omg_seg)}
    if not any(k.startswith("backbone.") for k in omg_seg):
        if not args.open_clip:
            raise SystemExit("the OMG-Seg file has no backbone.* weights: pass --open-clip")
        log("reading the open_clip backbone")
        sources["open_clip"] = (open_clip_rule, load_torch(args.open_clip))
    elif args.open_clip:
        log("  the OMG-Seg file has the backbone; --open-clip is not used")
    sources |= {"internlm2": (internlm2_rule, base), "finetune": (finetune_rule, finetune)}
    log("mapping keys")
    targets = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    state = convert_state(targets, sources, args.lora_alpha / args.lora_r, log)
    model.load_state_dict(state, strict=True)
    model.visual_encoder.panoptic_head.set_class_embeddings(cls_embed.float())

    tokenizer_json = sentencepiece_to_hf(sp_model)
    if Tokenizer(tokenizer_json).vocab_rows != rows:
        raise SystemExit(f"tokenizer gives {Tokenizer(tokenizer_json).vocab_rows} embedding rows, the checkpoint has {rows}")
    return model, tokenizer_json


def export(args, model, tokenizer_json, log=print):
    log(f"exporting the bundle to {args.out} (slow for the 7B model)")
    names = [Path(p).name for p in (args.internlm2, args.omg_seg, args.class_embeddings, args.finetune, args.open_clip) if p]
    write_bundle(model, tokenizer_json, args.out, name=args.name, description=args.description, source=names,
                 licence=args.licence, verify=args.verify)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--internlm2", required=True, help="Hugging Face folder of internlm2-chat-7b")
    parser.add_argument("--omg-seg", required=True, help="omg_seg_convl.pth")
    parser.add_argument("--class-embeddings", required=True, help="convnext_large_d_320_CocoPanopticOVDataset.pth")
    parser.add_argument("--finetune", required=True, help="omg_llava_7b_finetune_8gpus.pth or a task checkpoint")
    parser.add_argument("--open-clip", help="open_clip ConvNeXt-L weights, if the OMG-Seg file lacks the backbone")
    parser.add_argument("--class-names", help="text file, one name per class-embedding row")
    parser.add_argument("--config", default="omg-llava-7b")
    parser.add_argument("--lora-alpha", type=float, default=256.0)
    parser.add_argument("--lora-r", type=float, default=512.0)
    parser.add_argument("--out", required=True)
    parser.add_argument("--name", default="omg-llava-7b")
    parser.add_argument("--description", default="OMG-LLaVA 7B converted from the released checkpoints.")
    parser.add_argument("--licence", default="Apache-2.0 (upstream OMG-Seg / OMG-LLaVA); InternLM2 weights under their own licence")
    parser.add_argument("--verify", action="store_true", help="compare every graph with PyTorch in onnxruntime-node")
    args = parser.parse_args()
    with torch.no_grad():
        model, tokenizer_json = load_model(args)
        export(args, model, tokenizer_json)
    print(f"wrote bundle {args.out}")


if __name__ == "__main__":
    main()
