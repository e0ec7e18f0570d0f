"""Export-only wrappers: the six bundle graphs (bundle.md) over `OmgLlava`'s methods. Not for direct use.

Each wrapper only fixes argument order and flattens outputs to the graph's named tensors (where a method's
parameters and results already are the graph's, `MethodGraph` calls it as it is); the model code itself is
what gets traced, so the graphs cannot drift from the Python reference.
`GRAPHS[name](model)` returns (wrapper, input names, output names, dummy inputs, dynamic axes).
"""
from pathlib import Path

import onnx
import torch
from onnx import numpy_helper
from torch import nn

VISION_OUTPUTS = ("mask_features", "mem0", "mem1", "mem2", "clip_feature", "query_feat", "query_pos",
                  "class_logits", "mask_logits")
PRIOR_INPUTS = ("clip_feature", "query_feat", "query_pos", "class_logits", "mask_logits")
OPSET = 17  # bundle.md


class VisionGraph(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, pixel_values):
        out = self.model.vision(pixel_values)
        return tuple(out[name] for name in VISION_OUTPUTS)


class MethodGraph(nn.Module):
    """A graph whose inputs and outputs are exactly those of one `OmgLlava` method: prior, prompt, embed, seg."""

    def __init__(self, model, method: str):
        super().__init__()
        self.model, self.method = model, method

    def forward(self, *inputs):
        return getattr(self.model, self.method)(*inputs)


class LlmGraph(nn.Module):
    """Optimum-style decoder: past_key_values.{i}.key/.value in, present.{i}.key/.value out."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, inputs_embeds, attention_mask, position_ids, *past_flat):
        past = list(zip(past_flat[0::2], past_flat[1::2]))
        logits, last_hidden, present = self.model.llm(inputs_embeds, position_ids, attention_mask, past)
        return (logits, last_hidden) + tuple(t for kv in present for t in kv)


def _features(cfg):
    C, M = cfg.decoder_dim, cfg.mask_size
    L0, L1, L2 = cfg.memory_sizes
    return {"mask_features": torch.randn(1, C, M, M), "mem0": torch.randn(1, C, L0, L0),
            "mem1": torch.randn(1, C, L1, L1), "mem2": torch.randn(1, C, L2, L2)}


def vision(model):
    S = model.cfg.image_size
    return VisionGraph(model), ("pixel_values",), VISION_OUTPUTS, {"pixel_values": torch.randn(1, 3, S, S)}, {}


def prior(model):
    cfg = model.cfg
    with torch.no_grad():
        out = model.vision(torch.randn(1, 3, cfg.image_size, cfg.image_size))
    dummy = {name: out[name] for name in PRIOR_INPUTS}
    outputs = ("pixel_tokens", "separator", "object_tokens", "object_valid")
    return MethodGraph(model, "prior"), PRIOR_INPUTS, outputs, dummy, {}


def prompt(model):
    S = model.cfg.image_size
    dummy = _features(model.cfg) | {
        "points": torch.tensor([[S * 0.3, S * 0.6], [0.0, 0.0], [S * 0.5, S * 0.5]]),
        "boxes": torch.tensor([[0.0, 0.0, 0.0, 0.0], [S * 0.1, S * 0.2, S * 0.7, S * 0.9], [0.0, 0.0, 0.0, 0.0]]),
        "regions": torch.zeros(3, S, S).index_fill_(1, torch.arange(S // 4, S // 2), 1.0),
        "kinds": torch.tensor([0, 1, 2]),
    }
    n = {0: "num_prompts"}
    axes = {"points": n, "boxes": n, "regions": n, "kinds": n, "prompt_embeds": n}
    return MethodGraph(model, "prompt"), tuple(dummy), ("prompt_embeds",), dummy, axes


def embed(model):
    bt = {0: "batch", 1: "sequence"}
    dummy = {"input_ids": torch.tensor([[1, 2, 3]])}
    return MethodGraph(model, "embed"), ("input_ids",), ("inputs_embeds",), dummy, {"input_ids": bt, "inputs_embeds": bt}


def llm(model):
    c = model.cfg.llm
    B, T, L = 1, 2, 3  # a non-empty dummy cache, so nothing is specialised to L_past = 0
    past_names = [f"past_key_values.{i}.{kv}" for i in range(c.num_layers) for kv in ("key", "value")]
    present_names = [f"present.{i}.{kv}" for i in range(c.num_layers) for kv in ("key", "value")]
    dummy = {"inputs_embeds": torch.randn(B, T, c.hidden_size),
             "attention_mask": torch.ones(B, L + T, dtype=torch.int64),
             "position_ids": torch.arange(L, L + T)[None]}
    dummy |= {name: torch.randn(B, c.num_kv_heads, L, c.head_dim) for name in past_names}
    bt = {0: "batch", 1: "sequence"}
    axes = {"inputs_embeds": bt, "position_ids": bt, "logits": bt, "last_hidden_state": bt,
            "attention_mask": {0: "batch", 1: "total_sequence"}}
    axes |= {name: {0: "batch", 2: "past_sequence"} for name in past_names}
    axes |= {name: {0: "batch", 2: "total_sequence"} for name in present_names}
    return LlmGraph(model), tuple(dummy), ("logits", "last_hidden_state", *present_names), dummy, axes


def seg(model):
    dummy = {"seg_hidden": torch.randn(2, model.cfg.llm.hidden_size)} | _features(model.cfg)
    n = {0: "num_seg"}
    return MethodGraph(model, "seg"), tuple(dummy), ("mask_logits",), dummy, {"seg_hidden": n, "mask_logits": n}


GRAPHS = {"vision": vision, "prior": prior, "prompt": prompt, "embed": embed, "llm": llm, "seg": seg}


def export_graph(model, name: str, path):
    """Trace graph `name` of `model` into `path` (ONNX at OPSET, every batch/sequence dim dynamic).

    Graphs over 2 GB keep their weights in one external-data file beside them, `<name>.onnx.data`."""
    wrapper, inputs, outputs, dummy, axes = GRAPHS[name](model)
    with torch.no_grad():
        torch.onnx.export(wrapper, tuple(dummy[n] for n in inputs), str(path), input_names=list(inputs),
                          output_names=list(outputs), dynamic_axes=axes, opset_version=OPSET,
                          do_constant_folding=True)
    _finish(Path(path), outputs)
    return inputs, outputs


def _finish(path: Path, names):
    """Give every output its bundle.md name and gather external weights into one file.

    An output that is a weight (e.g. query_pos) keeps its initializer's name in torch's export, so it is
    routed through an Identity. torch writes one file per tensor for graphs over 2 GB; they become `.onnx.data`."""
    pieces = {e.value for t in onnx.load(str(path), load_external_data=False).graph.initializer
              for e in t.external_data if e.key == "location"}
    graph_model = onnx.load(str(path))
    for output, name in zip(graph_model.graph.output, names):
        if output.name != name:
            graph_model.graph.node.append(onnx.helper.make_node("Identity", [output.name], [name]))
            output.name = name
    _share_equal_constants(graph_model.graph)
    _short_value_names(graph_model.graph)
    size = sum(len(t.raw_data) for t in graph_model.graph.initializer)
    if pieces or size >= 2 ** 31 - 2 ** 24:
        onnx.save_model(graph_model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                        location=f"{path.name}.data", size_threshold=1024)
        for piece in pieces - {f"{path.name}.data"}:
            (path.parent / piece).unlink()
    else:
        onnx.save(graph_model, str(path))


def _has_subgraphs(graph):
    return any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for n in graph.node for a in n.attribute)


def _share_equal_constants(graph):
    """Keep one Constant node per distinct value: tracing folds each use of a constant (the pixel decoder's
    reference points in every encoder layer, say) into a copy of its own."""
    if _has_subgraphs(graph):
        return  # values may be captured by subgraphs
    keep = {v.name for v in graph.output}
    first, alias, nodes = {}, {}, []
    for node in graph.node:
        for i, name in enumerate(node.input):
            node.input[i] = alias.get(name, name)
        if node.op_type == "Constant" and node.attribute[0].name == "value" and node.output[0] not in keep:
            t = node.attribute[0].t
            key = (t.data_type, tuple(t.dims), numpy_helper.to_array(t).tobytes())
            if key in first:
                alias[node.output[0]] = first[key]
                continue
            first[key] = node.output[0]
        nodes.append(node)
    del graph.node[:]
    graph.node.extend(nodes)


def _short_value_names(graph):
    """Rename intermediate values to t0, t1, ...: torch names them by module path, which makes up about a tenth
    of a small bundle. Graph inputs, outputs, weights and node names (used in runtime errors) are kept."""
    if _has_subgraphs(graph):
        return  # values may be captured by subgraphs
    keep = {v.name for v in graph.input} | {v.name for v in graph.output}
    names = {}
    for node in graph.node:
        for i, name in enumerate(node.input):
            node.input[i] = names.get(name, name)
        for i, name in enumerate(node.output):
            if name and name not in keep:
                node.output[i] = names.setdefault(name, f"t{len(names)}")
    del graph.value_info[:]
