"""Torch weights read back from a bundle's ONNX initializers, for bundles whose state dict was not kept.

The exporter names most initializers after their parameter, but it also folds weights into anonymous ones (a
Linear's transposed weight, a q/k/v slice of an attention in_proj) and shares one initializer between equal
parameters. So the meaning of each initializer is learned from a reference export of the same architecture whose
parameters all hold distinct random values: there, each initializer equals one transform (identity, transpose,
a slice of rows, the transpose of such a slice, a reshape) of exactly one parameter, found by value. Tracing is the same code
on the same shapes, so the reference and the bundle have the same nodes in the same order; pairing their node
inputs pairs their initializers, and the bundle's values then fill the parameters. Initializers that match no
parameter are constants or folded combinations of weights; the result is proven by exporting it again and
comparing every initializer with the bundle's.
"""
import tempfile
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper

from export.graphs import GRAPHS, export_graph
from omg_llava.model import OmgLlava


def transforms(value: np.ndarray):
    """(form, array) for each shape the exporter may give this tensor."""
    yield ("id", None), value
    if value.ndim == 2:
        yield ("T", None), value.T
        for i in range(min(value.shape[0], 16)):  # one row, e.g. a level embedding
            yield ("rows", (i, 1)), value[i]
    if value.ndim in (1, 2):
        for k in (2, 3, 4):  # fused projections split into k equal parts (q/k/v: 3)
            n = value.shape[0] // k
            if n * k != value.shape[0]:
                continue
            for j in range(k):
                part = value[j * n:(j + 1) * n]
                yield ("rows", (j, n)), part
                if value.ndim == 2:
                    yield ("rowsT", (j, n)), part.T


def initializer_nodes(proto: onnx.ModelProto):
    """(nodes, resolve): the graph's nodes without the Identity nodes that alias an initializer (the exporter adds
    them where it shares one initializer between equal parameters), and a map from a value name to its initializer."""
    inits = {i.name for i in proto.graph.initializer}
    alias, nodes = {}, []
    for n in proto.graph.node:
        if n.op_type == "Identity" and (n.input[0] in inits or n.input[0] in alias):
            alias[n.output[0]] = alias.get(n.input[0], n.input[0])
        else:
            nodes.append(n)
    return nodes, lambda name: alias.get(name, name if name in inits else None)


def paired_values(ref: onnx.ModelProto, bundle: onnx.ModelProto) -> list:
    """[(name, reference value, bundle value)] for every initializer and every Constant node, by walking both node
    lists in step (tracing is the same code on the same shapes, so the nodes correspond one to one)."""
    (ref_nodes, ref_init), (bundle_nodes, bundle_init) = initializer_nodes(ref), initializer_nodes(bundle)
    if [n.op_type for n in ref_nodes] != [n.op_type for n in bundle_nodes]:
        raise AssertionError("the bundle's graph has other nodes than this exporter writes: re-export the bundle")
    ref_values = {i.name: numpy_helper.to_array(i) for i in ref.graph.initializer}
    bundle_values = {i.name: numpy_helper.to_array(i) for i in bundle.graph.initializer}
    pairs, out = {}, []
    for rn, bn in zip(ref_nodes, bundle_nodes):
        if rn.op_type == "Constant" and rn.attribute and rn.attribute[0].name == "value":
            out.append((rn.name, numpy_helper.to_array(rn.attribute[0].t), numpy_helper.to_array(bn.attribute[0].t)))
        for r, b in zip(rn.input, bn.input):
            r, b = ref_init(r), bundle_init(b)
            if r is not None and (b is None or pairs.setdefault(r, b) != b):
                raise AssertionError(f"initializer {r} has no consistent counterpart in the bundle")
    for r, b in zip(ref.graph.output, bundle.graph.output):  # an output may be an initializer itself (the separator)
        r, b = ref_init(r.name), bundle_init(b.name)
        if r is not None and b is not None:
            pairs.setdefault(r, b)
    return out + [(b, ref_values[r], bundle_values[b]) for r, b in pairs.items()]


def folded_sum(value: np.ndarray, rows: list):
    """Two parameter rows whose sum the exporter folded into `value` (e.g. a prompt kind's embedding plus the mask
    token), or None. rows: [(key, (form, arg), array)] of one-row candidates."""
    same = [r for r in rows if r[2].shape == value.shape]
    for i, (ka, fa, a) in enumerate(same):
        for kb, fb, b in same[i + 1:]:
            if ka != kb and np.array_equal(a + b, value):
                return (ka, fa), (kb, fb)
    return None


def load_from_initializers(bundle: Path, cfg) -> tuple:
    """(model, report): an OmgLlava of `cfg` (vocab rows set) holding the parameters the bundle's graphs use."""
    protos = {g: onnx.load(str(bundle / f"{g}.onnx")) for g in GRAPHS}
    llm_decoder = any(".transformer_decoder_llm." in i.name for p in protos.values() for i in p.graph.initializer)
    torch.manual_seed(0)
    reference = OmgLlava(cfg, llm_decoder=llm_decoder).eval()
    with torch.no_grad():  # distinct values everywhere (default inits repeat ones and zeros), so matches are unique
        for p in reference.parameters():
            p.normal_(0, 0.02)
    params = {k: v.detach().clone() for k, v in reference.named_parameters()}
    buffers = {k: v.detach().clone() for k, v in reference.named_buffers()}
    candidates, flat = {}, {}
    for key, value in [*params.items(), *buffers.items()]:
        for form, array in transforms(value.numpy()):
            candidates.setdefault(array.shape, []).append((key, form, array))
        flat.setdefault(value.numel(), []).append((key, value.numpy().ravel()))
    rows = [(k, f, a) for shape, c in candidates.items() if len(shape) == 1 for k, f, a in c if f[0] == "rows" and k in params]
    filled = {k: np.zeros(v.shape, bool) for k, v in params.items()}
    out = {k: v.clone() for k, v in params.items()}
    report = {"tensors": 0, "constants": 0, "folded_sums": 0}

    def put(key, form, value):
        name, arg = form
        if name in ("id", "T"):
            out[key].copy_((value.T if name == "T" else value).reshape(out[key].shape))
            filled[key][...] = True
        else:
            j, n = arg
            part = out[key][j * n:(j + 1) * n]
            part.copy_((value.T if name == "rowsT" else value).reshape(part.shape))
            filled[key][j * n:(j + 1) * n] = True

    with tempfile.TemporaryDirectory() as tmp:
        for graph, proto in protos.items():
            export_graph(reference, graph, Path(tmp) / f"{graph}.onnx")
            for name, ref_value, bundle_value in paired_values(onnx.load(str(Path(tmp) / f"{graph}.onnx")), proto):
                if ref_value.dtype != np.float32:
                    continue
                hits = [(k, f) for k, f, a in candidates.get(ref_value.shape, []) if np.array_equal(a, ref_value)]
                # ... or the same values in another shape (e.g. a GroupNorm weight as [C,1,1])
                hits = hits or [(k, ("id", None)) for k, a in flat.get(ref_value.size, []) if np.array_equal(a, ref_value.ravel())]
                in_params = [h for h in hits if h[0] in params]
                if len({k for k, _ in in_params}) > 1:
                    raise AssertionError(f"{graph}.onnx: {name} matches several parameters {in_params[:3]}")
                report["tensors"] += 1
                value = torch.from_numpy(bundle_value.copy())
                if in_params:
                    put(*in_params[0], value)
                elif hits:  # a buffer the graph holds as it is (e.g. trained class embeddings)
                    buffers[hits[0][0]] = value.reshape(buffers[hits[0][0]].shape)
                    report["constants"] += 1
                elif ref_value.ndim == 1 and (pair := folded_sum(ref_value, rows)):
                    # Only the sum reaches the graphs: the first row takes it, the second becomes zero.
                    (ka, fa), (kb, fb) = pair
                    put(ka, fa, value)
                    put(kb, fb, torch.zeros_like(value))
                    report["folded_sums"] += 1
                else:
                    report["constants"] += 1
    model = OmgLlava(cfg, llm_decoder=llm_decoder).eval()
    model.load_state_dict({**model.state_dict(), **out}, strict=True)
    with torch.no_grad():
        for key, value in buffers.items():
            model.get_buffer(key).copy_(value)
    report["parameters_not_in_any_graph"] = sorted(k for k, f in filled.items() if not f.all())
    report["max_abs_diff_after_reexport"] = reexport_diff(model, protos)
    return model, report


def reexport_diff(model: OmgLlava, protos: dict) -> float:
    """Exports `model` again and compares every initializer and constant with the bundle's: folded combinations
    of weights are only right if the parameters are. Fails above float noise."""
    worst = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for graph, proto in protos.items():
            export_graph(model, graph, Path(tmp) / f"{graph}.onnx")
            for _name, mine, theirs in paired_values(onnx.load(str(Path(tmp) / f"{graph}.onnx")), proto):
                if mine.dtype == np.float32:
                    worst = max(worst, float(np.abs(mine.astype(np.float64) - theirs).max(initial=0.0)))
    if worst > 1e-5:
        raise AssertionError(f"the weights read back do not reproduce the bundle (max abs diff {worst:.2e})")
    return worst
