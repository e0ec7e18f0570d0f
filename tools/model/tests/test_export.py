"""The committed tiny-random fixture: bundle contract, graphs in onnxruntime vs the goldens, goldens vs the reference."""
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

from export.bundle import TEMPLATE, build_model, load_tokenizer
from export.graphs import GRAPHS, _finish, export_graph
from export.golden import MAX_NEW_TOKENS, SEED, TURNS, steer
from export.tensors import from_json, run_onnxruntime
from omg_llava.pipeline import Conversation

FIXTURE = Path(__file__).resolve().parents[3] / "test" / "fixtures" / "tiny-random"
MANIFEST = json.loads((FIXTURE / "manifest.json").read_text())
GOLDEN = json.loads((FIXTURE / "golden.json").read_text())
T = {name: from_json(t) for name, t in GOLDEN["tensors"].items()}
NUM_LAYERS = MANIFEST["config"]["llm"]["num_layers"]
KV = [f"past_key_values.{i}.{kv}" for i in range(NUM_LAYERS) for kv in ("key", "value")]
PRESENT = [f"present.{i}.{kv}" for i in range(NUM_LAYERS) for kv in ("key", "value")]
FEATURES = ["mask_features", "mem0", "mem1", "mem2"]
IO = {  # bundle.md, "Graphs"
    "vision": (["pixel_values"], FEATURES + ["clip_feature", "query_feat", "query_pos", "class_logits", "mask_logits"]),
    "prior": (["clip_feature", "query_feat", "query_pos", "class_logits", "mask_logits"],
              ["pixel_tokens", "separator", "object_tokens", "object_valid"]),
    "prompt": (FEATURES + ["points", "boxes", "regions", "kinds"], ["prompt_embeds"]),
    "embed": (["input_ids"], ["inputs_embeds"]),
    "llm": (["inputs_embeds", "attention_mask", "position_ids"] + KV, ["logits", "last_hidden_state"] + PRESENT),
    "seg": (["seg_hidden"] + FEATURES, ["mask_logits"]),
}
needs_node = pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")


def close(a, b, tol=1e-4):
    return np.abs(np.asarray(a, np.float64) - b).max(initial=0.0) <= tol * max(1.0, np.abs(b).max(initial=0.0))


def test_manifest_lists_every_file_with_its_hash():
    for name, entry in MANIFEST["files"].items():
        data = (FIXTURE / name).read_bytes()
        assert (hashlib.sha256(data).hexdigest(), len(data)) == (entry["sha256"], entry["bytes"]), name
    assert MANIFEST["format"] == 1 and set(MANIFEST["files"]) >= {f"{g}.onnx" for g in IO} | {"tokenizer.json", "README.md"}


@pytest.mark.parametrize("graph", list(IO))
def test_graph_names_and_opset(graph):
    model = onnx.load(str(FIXTURE / f"{graph}.onnx"))
    onnx.checker.check_model(model)
    assert [i.name for i in model.graph.input] == IO[graph][0]
    assert [o.name for o in model.graph.output] == IO[graph][1]
    assert {o.domain: o.version for o in model.opset_import}[""] == 17


def test_llm_sequence_dims_are_dynamic():
    model = onnx.load(str(FIXTURE / "llm.onnx"))
    dims = {i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in model.graph.input}
    assert all(isinstance(d, str) for d in dims["inputs_embeds"][:2] + dims["attention_mask"] + dims[KV[0]][:1] + dims[KV[0]][2:3])


@needs_node
def test_vision_and_prior_in_onnxruntime_match_golden():
    vision = run_onnxruntime(FIXTURE / "vision.onnx", {"pixel_values": T["pixel_values"]})
    for name in IO["vision"][1]:
        assert close(vision[name], T[name]), name
    prior = run_onnxruntime(FIXTURE / "prior.onnx", {n: T[n] for n in IO["prior"][0]})
    for name in IO["prior"][1]:
        assert close(prior[name].astype(np.float32), T[name].astype(np.float32)), name


@needs_node
@pytest.mark.parametrize("turn", ["turn1", "turn2"])
def test_prompt_and_seg_in_onnxruntime_match_golden(turn):
    feats = {n: T[n] for n in FEATURES}
    prompts = {k: T[f"{turn}.prompt_{k}"] for k in ("points", "boxes", "regions", "kinds")}
    prompts["regions"] = prompts["regions"].astype(np.float32)
    embeds = run_onnxruntime(FIXTURE / "prompt.onnx", feats | prompts)["prompt_embeds"]
    assert close(embeds, T[f"{turn}.prompt_embeds"])
    seg = run_onnxruntime(FIXTURE / "seg.onnx", feats | {"seg_hidden": T[f"{turn}.seg_hidden"]})["mask_logits"]
    assert close(seg, T[f"{turn}.seg_mask_logits"])


@needs_node
def test_llm_prefill_in_onnxruntime_matches_golden():
    x = T["turn1.inputs_embeds"][None]
    D_h = MANIFEST["config"]["llm"]["head_dim"]
    empty = np.zeros((1, MANIFEST["config"]["llm"]["num_kv_heads"], 0, D_h), np.float32)
    out = run_onnxruntime(FIXTURE / "llm.onnx", {
        "inputs_embeds": x, "attention_mask": np.ones((1, x.shape[1]), np.int64),
        "position_ids": np.arange(x.shape[1])[None]} | {n: empty for n in KV})
    assert close(out["logits"][0, -1], T["turn1.prompt_logits"])
    assert int(out["logits"][0, -1].argmax()) == int(T["turn1.generated"][0])


def test_golden_is_reproduced_by_the_reference():
    """The committed goldens still match the current Python reference (regenerate with export.golden if not)."""
    tokenizer_json, tokenizer = load_tokenizer()
    assert json.loads((FIXTURE / "tokenizer.json").read_text()) == tokenizer_json
    model = build_model("tiny-random", tokenizer.vocab_rows, seed=SEED)
    steer(model, tokenizer)
    conv = Conversation(model, tokenizer, TEMPLATE, Image.open(FIXTURE / "golden-image.png"))
    assert close(conv.pixel_values, T["pixel_values"], 1e-6)
    assert close(conv.image_block, T["image_block"])
    mask = np.asarray(Image.open(FIXTURE / "golden-mask.png")) > 127
    for k, (question, prompts) in enumerate(TURNS, start=1):
        prompts = [p | {"mask": mask} if p["kind"] == "mask" else p for p in prompts]
        turn = conv.ask(question, prompts, MAX_NEW_TOKENS)
        assert turn.ids == T[f"turn{k}.ids"].tolist()
        assert turn.generated == T[f"turn{k}.generated"].tolist()
        assert close(turn.prompt_logits, T[f"turn{k}.prompt_logits"])
        assert close(turn.mask_logits, T[f"turn{k}.seg_mask_logits"])
        assert np.array_equal(turn.masks, T[f"turn{k}.masks"].astype(bool))



def test_fixture_graphs_are_what_the_exporter_writes_now(tmp_path):
    """A graph change must regenerate the fixture, or the TypeScript parity test runs graphs no one exports."""
    _, tokenizer = load_tokenizer()
    model = build_model("tiny-random", tokenizer.vocab_rows, seed=SEED)
    steer(model, tokenizer)
    for graph in GRAPHS:
        export_graph(model, graph, tmp_path / f"{graph}.onnx")
        assert (tmp_path / f"{graph}.onnx").read_bytes() == (FIXTURE / f"{graph}.onnx").read_bytes(), graph


@needs_node
def test_equal_constants_are_kept_once(tmp_path):
    """Tracing folds a reused tensor into one Constant per use; _finish keeps one of each value, same outputs."""
    c = numpy_helper.from_array(np.arange(3, dtype=np.float32))
    other = numpy_helper.from_array(np.ones(3, dtype=np.float32))
    nodes = [helper.make_node("Constant", [], [name], value=t) for name, t in (("c1", c), ("c2", c), ("c3", other))]
    nodes += [helper.make_node("Add", ["x", "c1"], ["y"]), helper.make_node("Add", ["y", "c2"], ["z"]),
              helper.make_node("Add", ["z", "c3"], ["out"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, [3])])
    path = tmp_path / "g.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    _finish(path, ["out"])
    assert [n.op_type for n in onnx.load(str(path)).graph.node].count("Constant") == 2
    out = run_onnxruntime(path, {"x": np.zeros(3, np.float32)})
    assert np.array_equal(out["out"], 2 * np.arange(3, dtype=np.float32) + 1)


@needs_node
def test_external_weights_are_gathered_into_one_data_file(tmp_path):
    """torch writes one file per tensor for graphs over 2 GB; _finish gathers them and names a weight output."""
    w = np.arange(600, dtype=np.float32).reshape(2, 300)
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "w"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 300])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 300]), helper.make_tensor_value_info("w", TensorProto.FLOAT, [2, 300])],
        [numpy_helper.from_array(w, "w")])
    path = tmp_path / "g.onnx"
    onnx.save_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path),
                    save_as_external_data=True, all_tensors_to_one_file=False, size_threshold=0)
    assert (tmp_path / "w").exists()
    _finish(path, ["y", "weight"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.onnx", "g.onnx.data"]
    out = run_onnxruntime(path, {"x": np.ones((2, 300), np.float32)})
    assert np.array_equal(out["y"], w + 1) and np.array_equal(out["weight"], w)
