"""Write a model bundle (bundle.md): six ONNX graphs, tokenizer.json, manifest.json, README.md.

    python3 -m export.bundle --config tiny-random --out DIR [--weights ckpt.pt] [--seed 0]   (from tools/model)

Without --weights the model is randomly initialised from --seed. Every graph is checked with
onnx.checker and run once in onnxruntime-node against PyTorch on the wrapper's dummy inputs.
"""
import argparse
import hashlib
import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import torch

from export.graphs import GRAPHS, OPSET, export_graph
from export.tensors import as_numpy, run_onnxruntime
from omg_llava.config import get_config, manifest_config
from omg_llava.model import OmgLlava, has_llm_decoder
from omg_llava.tokenizer import Tokenizer, sentencepiece_to_hf

TOOLS = Path(__file__).resolve().parent.parent
DEFAULT_SP_MODEL = TOOLS / "tokenizer" / "scenes.model"
TEMPLATE = {"system": "", "user": "<|im_start|>user\n{input}<|im_end|>\n<|im_start|>assistant\n",
            "separator": "\n", "image": "<image>", "stop": ["<|im_end|>"]}
GENERATION = {"max_new_tokens": 256, "do_sample": False, "temperature": 0.1, "top_k": 40, "top_p": 0.75}
TOLERANCE = 1e-4  # max abs diff, relative to max(1, max |torch value|)


def load_tokenizer(sp_model_path=DEFAULT_SP_MODEL):
    """(tokenizer.json dict, Tokenizer) from a SentencePiece model file."""
    tokenizer_json = sentencepiece_to_hf(Path(sp_model_path).read_bytes())
    return tokenizer_json, Tokenizer(tokenizer_json)


def build_model(config: str, vocab_rows: int, weights=None, seed: int = 0) -> OmgLlava:
    """The config's model with `vocab_rows` embedding rows: random from `seed`, or loaded from a state-dict file."""
    cfg = get_config(config)
    cfg = replace(cfg, llm=replace(cfg.llm, vocab_rows=vocab_rows))
    if weights is None:
        return OmgLlava.random(cfg, seed)
    state = torch.load(weights, map_location="cpu")
    state = state.get("state_dict", state)
    model = OmgLlava(cfg, llm_decoder=has_llm_decoder(state)).eval()
    model.load_state_dict(state, strict=True)
    return model


def verify_graph(model, name: str, path) -> float:
    """Run graph `name` in onnxruntime-node and PyTorch on the same inputs; returns the max relative abs diff."""
    wrapper, inputs, outputs, dummy, _ = GRAPHS[name](model)
    with torch.no_grad():
        ref = wrapper(*(dummy[n] for n in inputs))
    ref = ref if isinstance(ref, tuple) else (ref,)
    got = run_onnxruntime(path, {n: dummy[n] for n in inputs})
    worst = 0.0
    for out_name, r in zip(outputs, ref):
        r = as_numpy(r)
        if r.dtype == np.bool_:
            if not np.array_equal(r, got[out_name].astype(bool)):
                raise AssertionError(f"{name}.onnx output {out_name} differs from PyTorch")
            continue
        scale = max(1.0, float(np.abs(r).max(initial=0.0)))
        worst = max(worst, float(np.abs(r - got[out_name]).max(initial=0.0)) / scale)
    if worst > TOLERANCE:
        raise AssertionError(f"{name}.onnx differs from PyTorch by {worst:.2e} (tolerance {TOLERANCE})")
    return worst


def _file_entry(path: Path) -> dict:
    return {"sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "bytes": path.stat().st_size}


def write_readme(out: Path, manifest: dict):
    c = manifest["config"]
    text = (Path(__file__).with_name("README.template.md")).read_text(encoding="utf-8").format(
        name=manifest["name"], description=manifest["description"],
        image_size=c["image_size"], mask_size=c["mask_size"], num_queries=c["num_queries"],
        decoder_dim=c["decoder_dim"], num_classes=c["num_classes"], class_names=", ".join(c["class_names"]),
        hidden_size=c["llm"]["hidden_size"], num_layers=c["llm"]["num_layers"], vocab_rows=c["llm"]["vocab_rows"],
        source="\n".join(f"- {s}" for s in manifest["provenance"]["source"]),
        licence=manifest["provenance"]["licence"], quality=json.dumps(manifest["quality"], indent=2))
    (out / "README.md").write_text(text, encoding="utf-8")


def write_bundle(model: OmgLlava, tokenizer_json: dict, out, *, name: str, description: str, source: list,
                 licence: str = "Apache-2.0", quality: dict = None, generation: dict = None, verify: bool = True):
    """Export `model` and its tokenizer as a bundle in `out`; returns the manifest dict."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = Tokenizer(tokenizer_json)
    if tokenizer.vocab_rows != model.cfg.llm.vocab_rows:
        raise ValueError(f"tokenizer has {tokenizer.vocab_rows} rows, model {model.cfg.llm.vocab_rows}")
    for graph in GRAPHS:
        path = out / f"{graph}.onnx"
        export_graph(model, graph, path)
        onnx.checker.check_model(str(path))  # by path: works for graphs with external data too
        if verify:
            print(f"{graph}.onnx: onnxruntime vs PyTorch max rel diff {verify_graph(model, graph, path):.1e}")
    (out / "tokenizer.json").write_text(json.dumps(tokenizer_json, ensure_ascii=False), encoding="utf-8")
    manifest = {
        "format": 1, "name": name, "description": description,
        "config": manifest_config(model.cfg, tokenizer.manifest_tokens(), TEMPLATE, generation or GENERATION),
        "files": {},
        "provenance": {"exporter": f"tools/model export.bundle (torch {torch.__version__}, onnx opset {OPSET})",
                       "source": source, "licence": licence},
        "quality": quality or {"note": "not measured"},
    }
    write_readme(out, manifest)
    files = ["tokenizer.json", *(f"{g}.onnx" for g in GRAPHS), *sorted(p.name for p in out.glob("*.onnx.data")), "README.md"]
    manifest["files"] = {f: _file_entry(out / f) for f in files}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return manifest


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="tiny-random, nano or omg-llava-7b")
    parser.add_argument("--out", required=True)
    parser.add_argument("--weights", help="state dict of OmgLlava (torch.save); random weights if absent")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tokenizer", default=str(DEFAULT_SP_MODEL), help="SentencePiece model")
    parser.add_argument("--name", help="bundle name (default: the config name)")
    parser.add_argument("--description", default="")
    parser.add_argument("--source", action="append", default=[], help="provenance source (repeatable)")
    parser.add_argument("--licence", default="Apache-2.0")
    parser.add_argument("--quality", help="JSON file with the measured quality block")
    parser.add_argument("--no-verify", action="store_true", help="skip the onnxruntime-node comparison")
    args = parser.parse_args()
    if not args.no_verify and shutil.which("node") is None:
        parser.error("node is needed to verify the graphs in onnxruntime-node (or pass --no-verify)")
    tokenizer_json, tokenizer = load_tokenizer(args.tokenizer)
    model = build_model(args.config, tokenizer.vocab_rows, args.weights, args.seed)
    source = args.source or ([f"random weights, seed {args.seed}"] if args.weights is None else [Path(args.weights).name])
    quality = json.loads(Path(args.quality).read_text()) if args.quality else None
    write_bundle(model, tokenizer_json, args.out, name=args.name or args.config, description=args.description,
                 source=source, licence=args.licence, quality=quality, verify=not args.no_verify)
    print(f"wrote bundle {args.out}")


if __name__ == "__main__":
    main()
