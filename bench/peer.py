"""The PyTorch side of the peer ratio: the bench's turns through the reference pipeline (tools/model/omg_llava) on the
bundle's own weights, with per-stage wall times, in the same thread count as the TypeScript side.

    /usr/bin/python3 bench/peer.py      (run by bench/peer.ts; any working directory; JSON lines on stdin/stdout)

Setup line: {"bundle", "threads", "warmup", "max_new_tokens", "weights" (optional state-dict file)};
then one line per case: {"name", "first": {"text", "prompts"}, "followUp": {...}, "images": [path per run]}.
Weights are recovered from the bundle's provenance (see `recover_model`) and checked against every named ONNX
initializer of the bundle, so the two sides provably run the same numbers.
"""
import io
import json
import re
import sys
import time
from dataclasses import replace
from pathlib import Path

TOOLS = Path(__file__).resolve().parent.parent / "tools" / "model"
sys.path.insert(0, str(TOOLS))

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import torch  # noqa: E402
from onnx import numpy_helper  # noqa: E402
from PIL import Image  # noqa: E402

from export.bundle import build_model  # noqa: E402
from omg_llava import pipeline  # noqa: E402
from omg_llava.config import CONFIGS, get_config  # noqa: E402
from omg_llava.pipeline import Conversation  # noqa: E402
from omg_llava.tokenizer import Tokenizer  # noqa: E402


def config_name(manifest_name: str) -> str:
    for name in (manifest_name, manifest_name.replace("omg-llava-", "")):
        if name in CONFIGS:
            return name
    raise KeyError(f"bundle {manifest_name!r} matches no config of omg_llava/config.py")


def weight_files(sources, name, max_bytes):
    """State-dict files that may hold the bundle's weights: those the provenance names, the conventional
    runs/<config>/omg-llava-<config>.pt, then any other .pt under tools/model/runs no larger than `max_bytes`
    (a state dict is about as large as the bundle's graphs; larger files are caches, not weights)."""
    named = [m for s in sources for m in re.findall(r"[\w./-]+\.pt\b", s)]
    runs = TOOLS / "runs"
    found = [p for n in named for p in sorted(runs.rglob(Path(n).name))]
    found += [runs / name / f"omg-llava-{name}.pt"] + sorted(runs.rglob("*.pt"))
    return list(dict.fromkeys(p for p in found if p.is_file() and p.stat().st_size <= max_bytes))


def recover_model(bundle: Path, manifest: dict, tokenizer: Tokenizer, weights=None):
    """(model, how, check): the torch weights the bundle was exported from, checked against the bundle.

    tiny-random: rebuilt from its seed and steered exactly as export/golden.py does; "random weights, seed N": rebuilt
    from the seed; otherwise the first state-dict file (see `weight_files`) that loads into the config and equals
    every named initializer of the bundle; or `weights`."""
    name, sources = config_name(manifest["name"]), manifest["provenance"]["source"]
    if weights:
        model = build_model(name, tokenizer.vocab_rows, weights)
        return model, f"state dict {Path(weights).name}", check_weights(model, bundle)
    if any("export/golden.py" in s for s in sources):
        from export.golden import SEED, steer
        model = build_model(name, tokenizer.vocab_rows, seed=SEED)
        steer(model, tokenizer)
        return model, f"rebuilt: random seed {SEED}, steered (export/golden.py)", check_weights(model, bundle)
    for s in sources:
        if s.startswith("random weights, seed "):
            seed = int(s.split("seed ")[1].split(",")[0])
            model = build_model(name, tokenizer.vocab_rows, seed=seed)
            return model, f"rebuilt: random seed {seed}", check_weights(model, bundle)
    tried = []
    max_bytes = 2 * sum(f["bytes"] for f in manifest["files"].values())
    for path in weight_files(sources, name, max_bytes):
        try:
            model = build_model(name, tokenizer.vocab_rows, str(path))
            return model, f"state dict {path.relative_to(TOOLS)}", check_weights(model, bundle)
        except Exception as err:  # not this model's weights (a stage checkpoint, another config, other values)
            tried.append(f"{path.relative_to(TOOLS)}: {str(err).splitlines()[0][:120]}")
    # No state dict: read the weights back from the graphs themselves (export/weights.py proves the result by
    # exporting it again and comparing every initializer).
    from export.weights import load_from_initializers
    cfg = get_config(name)
    model, report = load_from_initializers(bundle, replace(cfg, llm=replace(cfg.llm, vocab_rows=tokenizer.vocab_rows)))
    how = (f"read back from the bundle's ONNX initializers ({len(tried)} state dicts under tools/model/runs do not "
           f"match), re-export max abs diff {report['max_abs_diff_after_reexport']:.1e}")
    return model, how, check_weights(model, bundle)


def check_weights(model, bundle: Path) -> dict:
    """Max abs difference between every named initializer of the bundle's graphs and the torch parameter or buffer
    (non-persistent ones included, e.g. the class embeddings) it came from."""
    state = {f"model.{k}": v for k, v in [*model.state_dict().items(), *model.named_buffers()]}
    checked, worst = 0, 0.0
    for graph in ("vision", "prior", "prompt", "embed", "llm", "seg"):
        for init in onnx.load(str(bundle / f"{graph}.onnx")).graph.initializer:
            if init.name in state and tuple(init.dims) == tuple(state[init.name].shape):
                worst = max(worst, float(np.abs(numpy_helper.to_array(init) - state[init.name].numpy()).max(initial=0.0)))
                checked += 1
    if checked == 0 or worst > 1e-6:
        raise AssertionError(f"torch weights differ from the bundle (checked {checked}, max diff {worst})")
    return {"checked_initializers": checked, "max_abs_diff": worst}


class StageClock:
    """Wraps the model's graph methods and the pipeline's pre/post steps to add wall time to named stages.
    The first llm call of a turn is the prefill; later llm and embed calls are decoding."""

    def __init__(self, model):
        self.stages, self.in_decode = {}, False
        self.wrap(pipeline, "preprocess", "preprocess")
        self.wrap(model, "vision", "vision")
        self.wrap(model, "prior", "prior")
        self.wrap(pipeline, "prompt_inputs", "prompts")
        self.wrap(model, "prompt", "prompts")
        self.wrap(model, "seg", "seg")
        self.wrap(pipeline.Geometry, "masks", "postprocess")
        llm, embed = model.llm.forward, model.embed

        def timed_llm(*args):
            stage = "decode" if self.in_decode else "prefill"
            self.in_decode = True
            return self.timed(stage, llm, args)

        model.llm.forward = timed_llm  # an instance attribute: nn.Module.__call__ then runs it
        model.embed = lambda *args: self.timed("decode", embed, args) if self.in_decode else embed(*args)

    def timed(self, stage, fn, args):
        t0 = time.perf_counter()
        try:
            return fn(*args)
        finally:
            self.stages[stage] = self.stages.get(stage, 0.0) + (time.perf_counter() - t0) * 1000

    def wrap(self, owner, attr, stage):
        fn = getattr(owner, attr)
        setattr(owner, attr, lambda *args, **kw: self.timed(stage, lambda *a: fn(*a, **kw), args))

    def start_turn(self):
        self.stages, self.in_decode = {}, False


def run_case(conv_args, clock, case, image_bytes, max_new_tokens):
    """One first turn (image pass included) and its follow-up on the same conversation."""
    clock.start_turn()
    t0 = time.perf_counter()
    conv = Conversation(*conv_args, Image.open(io.BytesIO(image_bytes)))
    turn = conv.ask(case["first"]["text"], case["first"]["prompts"], max_new_tokens=max_new_tokens)
    e2e = (time.perf_counter() - t0) * 1000
    stages = dict(clock.stages)
    t0 = time.perf_counter()
    follow = conv.ask(case["followUp"]["text"], case["followUp"]["prompts"], max_new_tokens=max_new_tokens)
    return {"stages": stages, "e2e": e2e, "followUp": (time.perf_counter() - t0) * 1000,
            "tokens": len(turn.generated), "followUpTokens": len(follow.generated), "masks": int(len(turn.masks))}


def main():
    """Line protocol: the first line is the setup request; one ready line answers it (weights, versions); then each
    line is a case and its answer one line of runs, so the bench can alternate the two sides case by case."""
    req = json.loads(sys.stdin.readline())
    torch.set_num_threads(req["threads"])
    bundle = Path(req["bundle"])
    manifest = json.loads((bundle / "manifest.json").read_text())
    tokenizer = Tokenizer(json.loads((bundle / "tokenizer.json").read_text()))
    model, how, check = recover_model(bundle, manifest, tokenizer, req.get("weights"))
    clock = StageClock(model)
    conv_args = (model, tokenizer, manifest["config"]["template"])
    print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(), "weights": {"source": how, **check}}), flush=True)
    for line in sys.stdin:
        case = json.loads(line)
        runs = [run_case(conv_args, clock, case, Path(path).read_bytes(), req["max_new_tokens"]) for path in case["images"]]
        print(json.dumps({"name": case["name"], "runs": runs[req["warmup"]:]}), flush=True)


if __name__ == "__main__":
    with torch.no_grad():
        main()
